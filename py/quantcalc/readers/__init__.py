"""Everything that turns what a user gives into arrays, without trusting the file: pasted
text and CSV (text), .npy/.npz/.safetensors bytes (arrays), checkpoints read by offset
(checkpoint, slab_reader; gguf through byte_window's large reads, its tensor directory checked
at once by gguf_directory; file_parts), llama.cpp's
importance matrices (imatrix), and the one `sources` module that turns a request's source
into values.

May import `errors`, `schema`, `formats` (to decode stored GGUF blocks) and `engine`.
"""
