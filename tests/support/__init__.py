"""What the tests share: the command line in a fresh process, reference arithmetic, ggml through
ctypes, and small checkpoints written with the formats' own tools."""
