"""GPTQ and AWQ checkpoints' packed weights (`qweight`, `qzeros`, `scales`, `g_idx`), decoded to
the (out_features, in_features) float32 weight of the nn.Linear they replace.

GPTQ (AutoGPTQ / GPTQModel, config `quant_method: gptq`): `qweight` int32 (in * bits / 32,
out) holds each output column's input values as one little-endian bit stream down the column
(AutoGPTQ `QuantLinear.pack`, nn_modules/qlinear/qlinear_cuda.py; 3-bit values straddle words),
`qzeros` int32 (groups, out * bits / 32) the zero points as a stream along each row, `scales`
(groups, out) and `g_idx` (in,) each input column's group, shuffled by `desc_act` (activation
order). Value = scales[g] * (q - z) as that module's forward computes it, where the historical
v1 format (`checkpoint_format: gptq`, the default) stores z - 1 (`zeros -= 1` in pack, `zeros +
1` per value when read) and GPTQModel's `gptq_v2` stores z. (GPTQModel converts v1 by adding
0x11111111 to whole words, which carries where a stored value is all ones: such a value, a zero
point of 0 that v1 cannot hold, is read here as AutoGPTQ and vLLM's kernels read it, 2^bits.)

AWQ (AutoAWQ's GEMM layout, `quant_method: awq`, `version: gemm`): `qweight` int32 (in,
out / 8) holds eight 4-bit output columns per word in the interleaved order [0, 2, 4, 6, 1, 3,
5, 7] (`WQLinear_GEMM.from_linear`, awq/modules/linear/gemm.py), `qzeros` (groups, out / 8) the
same way and not offset, `scales` (groups, out); value = (q - z) * scales
(`dequantize_gemm`, awq/utils/packing_utils.py).

Both libraries compute in float16: a float16 scale times an integer of at most 9 bits is exact
in float32, so their value is quantcalc's rounded once to float16.
"""

import numpy as np

from quantcalc.formats.stored import checks, packing

GPTQ_BITS = (2, 3, 4, 8)
GPTQ_FORMATS = ("gptq", "gptq_v2")


def dequantize_gptq(tensors, bits: int, group_size: int, sym: bool = True,
                    checkpoint_format: str = "gptq", desc_act=None, layer: str = ""):
    """The (out, in) float32 weight of a GPTQ layer from its `qweight`, `qzeros`, `scales` and
    `g_idx` (config.json's quantization_config gives bits, group_size, sym, desc_act and
    checkpoint_format; group_size -1 is one group per column)."""
    bits, group_size = _config(bits, group_size, GPTQ_BITS, layer)
    if checkpoint_format not in GPTQ_FORMATS:
        checks.refuse(f"{checks.label(layer, 'qweight')}: GPTQ checkpoint_format "
                      f"'{str(checkpoint_format)[:20]}' is not read (quantcalc reads gptq and "
                      "gptq_v2)")
    name = checks.label(layer, "qweight")
    qweight = checks.ndim(checks.tensor(tensors, "qweight", layer, needed_for="GPTQ"), name,
                          (2,), "a GPTQ layer")
    out_features = qweight.shape[1]
    scales = _scales(tensors, layer, out_features)
    g_idx = None if tensors.get("g_idx") is None else \
        checks.kind(checks.array(tensors["g_idx"], checks.label(layer, "g_idx")),
                    checks.label(layer, "g_idx"), "iu")
    in_features = len(g_idx) if g_idx is not None and g_idx.ndim == 1 else \
        qweight.shape[0] * 32 // bits
    packing.check_words(qweight, name, bits, in_features, 0,
                        f"the {in_features:,} input columns")
    groups = _group_of_each_column(g_idx, in_features, group_size, scales.shape[0], desc_act,
                                   layer)
    zeros = _gptq_zeros(tensors, bits, sym, checkpoint_format, scales.shape, layer)
    codes = packing.unpack(qweight, bits, in_features, axis=0)
    return _weight(codes, zeros[groups], scales[groups])


def dequantize_awq(tensors, bits: int, group_size: int, version: str = "gemm", layer: str = ""):
    """The (out, in) float32 weight of an AutoAWQ GEMM layer from `qweight`, `qzeros` and
    `scales` (quantization_config's w_bit / bits, q_group_size / group_size, version)."""
    bits, group_size = _config(bits, group_size, (4,), layer)
    if str(version).lower() != "gemm":
        checks.refuse(f"{checks.label(layer, 'qweight')}: AWQ version '{str(version)[:20]}' is "
                      "not read (quantcalc reads the GEMM layout vLLM and transformers load)")
    name, zeros_name = checks.label(layer, "qweight"), checks.label(layer, "qzeros")
    qweight = checks.ndim(checks.tensor(tensors, "qweight", layer, needed_for="AWQ"), name,
                          (2,), "an AWQ layer")
    in_features, out_features = qweight.shape[0], qweight.shape[1] * 8
    scales = _scales(tensors, layer, out_features)
    size = in_features if group_size == -1 else group_size
    if in_features % size or scales.shape[0] != in_features // size:
        checks.refuse(f"{checks.label(layer, 'scales')} has {scales.shape[0]} rows; "
                      f"{in_features:,} input columns in groups of {size} take "
                      f"{in_features / size:g} (AutoAWQ needs whole groups)")
    qzeros = checks.tensor(tensors, "qzeros", layer, needed_for="AWQ's GEMM layout")
    packing.check_words(qweight, name, bits, out_features, 1, "8 output columns per word")
    checks.shape(checks.ndim(qzeros, zeros_name, (2,), "AWQ zero points"), zeros_name,
                 (scales.shape[0], qweight.shape[1]), "one row per group, 8 columns per word")
    packing.check_words(qzeros, zeros_name, bits, out_features, 1, "8 output columns per word")
    codes = packing.awq_columns(packing.unpack(qweight, bits, out_features, axis=1))
    zeros = packing.awq_columns(packing.unpack(qzeros, bits, out_features, axis=1))
    groups = np.arange(in_features) // size
    return _weight(codes, zeros[groups], scales[groups])


def _config(bits, group_size, allowed, layer: str):
    where = checks.label(layer, "qweight")
    if isinstance(bits, bool) or bits not in allowed:
        checks.refuse(f"{where}: {str(bits)[:10]}-bit values are not read here (quantcalc reads "
                      f"{', '.join(str(b) for b in allowed)} bits)")
    if isinstance(group_size, bool) or not isinstance(group_size, int) or \
            not (group_size == -1 or group_size > 0):
        checks.refuse(f"{where}: group_size is {str(group_size)[:20]}; it must be a positive "
                      "integer or -1 (one group per column)")
    return int(bits), int(group_size)


def _scales(tensors, layer: str, out_features: int):
    name = checks.label(layer, "scales")
    scales = checks.kind(checks.tensor(tensors, "scales", layer, needed_for="dequantization"),
                         name, "f")
    checks.ndim(scales, name, (2,), "(groups, output columns) scales")
    if scales.shape[1] != out_features:
        checks.refuse(f"{name} has {scales.shape[1]:,} columns; "
                      f"{checks.label(layer, 'qweight')} holds {out_features:,} output columns")
    return scales


def _group_of_each_column(g_idx, in_features: int, group_size: int, groups: int, desc_act,
                          layer: str):
    size = in_features if group_size == -1 else group_size
    expected = -(-in_features // size)
    if groups != expected:
        checks.refuse(f"{checks.label(layer, 'scales')} has {groups} rows; {in_features:,} input "
                      f"columns in groups of {size} take {expected}")
    sequential = np.arange(in_features) // size
    if g_idx is None:
        return sequential
    name = checks.label(layer, "g_idx")
    checks.shape(g_idx, name, (in_features,), "one group per input column")
    if in_features and (g_idx.min() < 0 or g_idx.max() >= groups):
        checks.refuse(f"{name} names groups {int(g_idx.min())}..{int(g_idx.max())}; the scales "
                      f"have {groups}")
    if desc_act is False and not np.array_equal(g_idx, sequential):
        checks.refuse(f"{name} is shuffled but desc_act is false: vLLM would ignore it and "
                      "AutoGPTQ apply it, so the layer's values are not defined")
    return g_idx.astype(np.intp)


def _gptq_zeros(tensors, bits: int, sym: bool, checkpoint_format: str, scales_shape,
                layer: str):
    """The zero point of each (group, output column)."""
    half = 1 << (bits - 1)
    name = checks.label(layer, "qzeros")
    if tensors.get("qzeros") is None:
        if not sym:
            checks.refuse(f"{name} is missing (asymmetric GPTQ needs it)")
        return np.full(scales_shape, half, np.int16)
    qzeros = checks.ndim(checks.array(tensors["qzeros"], name), name, (2,), "GPTQ zero points")
    packing.check_words(qzeros, name, bits, scales_shape[1], 1, "the output columns")
    checks.shape(qzeros, name, (scales_shape[0], qzeros.shape[1]), "one row per group")
    zeros = packing.unpack(qzeros, bits, scales_shape[1], axis=1).astype(np.int16)
    if checkpoint_format == "gptq":
        zeros += 1
    if sym and (zeros != half).any():
        found = int(zeros[zeros != half][0])
        checks.refuse(f"{name} holds zero point {found} where sym is true (2^(bits-1) = {half}): "
                      f"vLLM would use {half} and AutoGPTQ {found}, so the layer's values are not "
                      "defined")
    return zeros


def _weight(codes, zeros, scales):
    """scales * (codes - zeros), (in, out) -> the (out, in) weight, in the scales' float type
    widened to float32."""
    values = codes.astype(checks.working_dtype(scales))
    values -= zeros
    values *= scales
    return np.ascontiguousarray(values.T)
