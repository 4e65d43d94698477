"""The bit-budget planner: the per-tensor mix of formats with least total error for a size
(allocate), llama.cpp's mixed presets by llama-quant.cpp's rules (llama_presets), and the plan as
tables, figure, recipe and `llama-quantize` arguments (report).

May import every layer below it, the scan included; never the facade or the command line.
"""
