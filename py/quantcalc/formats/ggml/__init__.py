"""llama.cpp's quantization types, bit-identical to ggml-quants.c: the legacy types as block
columns (legacy), the scale searches (search), the K-quants and IQ4 types (types), and the
decoding of stored GGUF blocks (decode).

May import `errors`, `schema` and `formats`.
"""
