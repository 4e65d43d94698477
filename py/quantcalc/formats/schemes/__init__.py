"""Quantization schemes: how a format gets its scales and turns a chunk of values into codes.

The facts of each format (element bits, block size, scale storage) come from its registry row
(schema/registry.py); a scheme class implements one family of formats, one family per module:
  integer        affine integers (TensorRT / ONNX Runtime conventions)
  floats         small floats scaled by amax / max, and NF4 (QLoRA)
  block_fp8      DeepSeek-V3's block-scaled FP8 (blocks of 128, tiles of 128 × 128)
  microscaling   OCP Microscaling v1.0 (MXFP8/6/4, MXINT8) and NVIDIA NVFP4
  llama_cpp      llama.cpp's types through formats/ggml/ (bit-identical to ggml), imported on
                 first use
What every scheme answers for the analysis pipeline is the protocol (protocol.py: Scheme, Span).
"""

from quantcalc.formats.schemes.block_fp8 import BlockFP8Scheme
from quantcalc.formats.schemes.floats import FloatScheme, NF4Scheme
from quantcalc.formats.schemes.integer import IntegerScheme
from quantcalc.formats.schemes.llama_cpp import GGMLScheme
from quantcalc.formats.schemes.microscaling import (E8M0_MAX, E8M0_MIN, MIN_E4M3, MXINT8_MAX,
                                                    MXScheme, NVFP4Scheme)
from quantcalc.formats.schemes.protocol import Scheme, Span

__all__ = ["FAMILIES", "Scheme", "Span", "scheme_for", "BlockFP8Scheme", "FloatScheme",
           "NF4Scheme", "IntegerScheme", "GGMLScheme", "MXScheme", "NVFP4Scheme", "E8M0_MIN",
           "E8M0_MAX", "MIN_E4M3", "MXINT8_MAX"]

FAMILIES = {"int": IntegerScheme, "float": FloatScheme, "nf4": NF4Scheme, "mx": MXScheme,
            "nvfp4": NVFP4Scheme, "ggml": GGMLScheme, "blockfp8": BlockFP8Scheme}


def scheme_for(config) -> Scheme:
    """The scheme of `config.format` (the Config has already checked the settings against it)."""
    fmt = config.format_row
    if config.convention != "exact":  # a framework's arithmetic (formats/conventions/)
        from quantcalc.formats.schemes.convention import convention_scheme
        return convention_scheme(config, fmt)
    return FAMILIES[fmt.family](config, fmt)
