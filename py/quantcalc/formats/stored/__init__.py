"""Decoders of the quantized weights a safetensors checkpoint stores, for the audit's quantized
side (GGUF's types are in formats/ggml): FP8 with block, channel or tensor scales (fp8),
compressed-tensors' pack-, int-, float- and nvfp4-pack-quantized layers (compressed_tensors), and
GPTQ/AWQ `qweight`/`qzeros`/`scales`/`g_idx` (gptq_awq). Each takes numpy arrays already read
from the file, trusts none of their shapes or dtypes (a `QuantcalcError` names the tensor and
what is wrong), and returns float32 values in the layout of the original `weight`; the shared
steps are the bit unpacking (packing), the checks (checks) and scales laid over blocks (blocks).

May import `errors`, `records`, `schema` and `formats`.
"""
