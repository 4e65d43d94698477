"""How values become codes: the integer grid and its scale/zero-point arithmetic (integer),
the small-float and NF4 grids (float_grids), granularity (granularity), one scheme module per
format family (schemes/) and llama.cpp's types bit-exact to ggml (ggml/, imported only once a
llama.cpp format is used).

May import `errors` and `schema`; never the engine, readers, reports or anything above.
"""
