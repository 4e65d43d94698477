"""The bit-budget planner: the per-tensor mix of formats with least total error for a size
(allocate; what stays as it is: kept), llama.cpp's mixed presets by llama-quant.cpp's rules
(llama_presets) priced on the scan (preset_prices), each tensor's GGUF name from gguf-py's table
(naming), and the plan as tables, figure and recipe (report) with what a tool can make of it:
`llama-quantize` arguments (llama_quantize) or an llm-compressor recipe (compressed_tensors).

May import every layer below it, the scan included; never the facade or the command line.
"""
