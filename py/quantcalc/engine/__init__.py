"""One analysis from values and settings: the validated settings (config), calibration
(ranges), float64 error accumulators (metrics), the pipeline and its Result (analysis), what a
result means (verdict) and several settings side by side (compare); `malloc` keeps freed memory
in the process for the next chunk.

May import `errors`, `schema` and `formats`; it never reads files and never draws.
"""
