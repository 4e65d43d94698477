"""A quantized checkpoint against its original, tensor by tensor: which tensors pair up and how
(pairing: names through gguf-py's table, llama.cpp's rope permutation of q/k undone by rope,
MoE experts stacked into one GGUF tensor), each pair streamed in slabs of rows on both sides
(sides, measure: the error the file really carries, importance-weighted with an imatrix), and
for llama.cpp's types whether the file's blocks are what llama.cpp makes of the original
(reproduce); the audit document with its totals (document), its reports and figures (report),
run here, in worker processes or on Dask (run).

May import every layer below it, the scan's reports and figures included; never plan, the
facade or the command line.
"""
