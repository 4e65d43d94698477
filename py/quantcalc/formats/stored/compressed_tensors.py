"""compressed-tensors' quantized layers (what llm-compressor writes and vLLM serves), decoded as
the library's own decompressors decode them (compressed-tensors 0.20: `compressors/
pack_quantized`, `naive_quantized` and `nvfp4` `decompress`, and `dequantize` in
quantization/lifecycle/forward.py):

- `pack-quantized`: int values of 1..8 bits, offset by 2^(bits-1) and packed into int32
  `weight_packed` (one bit stream per row, see packing), with `weight_shape`, `weight_scale` per
  tensor / channel / group / block and, when asymmetric with channel or group scales, the
  `weight_zero_point` packed the same way down its columns.
- `int-quantized`, `float-quantized` (and `naive-quantized`): the codes as they are, int8 or
  F8_E4M3 (uint8 bytes here), with `weight_scale` and, for asymmetric int, `weight_zero_point`.
- `nvfp4-pack-quantized`: E2M1 pairs in uint8 `weight_packed` (the even column in the low
  nibble), `weight_scale` F8_E4M3 per 16 columns and the tensor's `weight_global_scale`.

The value is `(q - zero_point) * scale` computed in the scale's float type, as `_dequantize` does
(`x_q.to(scale.dtype) - zero_point.to(scale.dtype)`, then `* scale`), and for NVFP4
`q * (scale / global_scale)`. float32 scales give compressed-tensors' bits exactly; for bf16 or
f16 scales the result stays float32 where the library rounds it once more to the scale's type
(and its NVFP4 output to bf16). An NVFP4 scale stored as a float instead of F8_E4M3 is used as
it is, where the library would first round it to bf16.
Activation order: checkpoints of compressed-tensors before 0.20 may carry `weight_g_idx`, the
group of each column (-1 everywhere when unused); column c then takes group g_idx[c]'s scale,
as that version's `_process_group` did by sorting the columns by g_idx.
"""

import numpy as np

from quantcalc.formats.float_grids import FLOAT_GRIDS
from quantcalc.formats.stored import blocks, checks, fp8, packing
from quantcalc.formats.stored.ct_args import GROUPED, WeightArgs, weight_args

FORMATS = ("pack-quantized", "int-quantized", "float-quantized", "naive-quantized",
           "nvfp4-pack-quantized")
_E2M1 = FLOAT_GRIDS["fp4_e2m1"].decode(np.arange(16)).astype(np.float32)


def dequantize(tensors, args, format: str, layer: str = ""):
    """The dequantized weight (float32, the original `weight`'s shape) of one layer.

    Args:
        tensors: the layer's stored arrays by name suffix (`weight_packed`, `weight_scale`,
            `weight_shape`, `weight_zero_point`, `weight_g_idx`, `weight_global_scale`, or
            `weight`), F8_E4M3 tensors as uint8 bytes and BF16 ones widened to float32.
        args: the layer's `weights` quantization args (a dict from config.json or WeightArgs).
        format: the layer's compression format (`quantization_config.format`, or the config
            group's own).
        layer: the layer's name (`model.layers.0.mlp.down_proj`), used in messages.
    """
    args = weight_args(args, layer)
    kind = str(format).lower()
    if kind == "pack-quantized":
        return _pack_quantized(tensors, args, layer)
    if kind in ("int-quantized", "float-quantized", "naive-quantized"):
        return _naive(tensors, args, layer)
    if kind == "nvfp4-pack-quantized":
        return _nvfp4(tensors, args, layer)
    checks.refuse(f"{checks.label(layer, 'weight')}: compressed-tensors format "
                  f"'{str(format)[:40]}' is not decoded by quantcalc (it reads "
                  f"{', '.join(FORMATS)})")


def _pack_quantized(tensors, args: WeightArgs, layer: str):
    if args.type != "int" or not 1 <= args.num_bits <= 8:
        checks.refuse(f"{checks.label(layer, 'weight_packed')}: pack-quantized holds int values "
                      f"of 1 to 8 bits, not {args.type} {args.num_bits}-bit ones")
    name = checks.label(layer, "weight_packed")
    packed = checks.tensor(tensors, "weight_packed", layer, needed_for="pack-quantized")
    checks.ndim(packed, name, (2,), "a pack-quantized weight")
    rows, cols = _weight_shape(tensors, packed, layer)
    bits = args.num_bits
    # whole values per word, spare bits unused: how versions before the dense packing
    # (compressed-tensors PR #732, 2026) stored 3/5/6/7 bits; where it takes as many words as
    # the dense one the two cannot be told apart, and the dense one is read
    padded = -(-cols // (32 // bits))
    if packed.shape[1] != packing.words_for(cols, bits) and packed.shape[1] == padded:
        checks.refuse(f"{name} holds {32 // bits} {bits}-bit values per word with the spare bits "
                      "unused, as compressed-tensors did before its dense packing; quantcalc "
                      "reads the dense packing of the versions since")
    packing.check_words(packed, name, bits, cols, 1, f"a row of {cols:,} columns")
    codes = packing.unpack(packed, bits, cols, axis=1).astype(np.int16) - (1 << (bits - 1))
    return _scaled_codes(codes, tensors, args, layer, packed_zero=True)


def _weight_shape(tensors, packed, layer: str) -> tuple:
    name = checks.label(layer, "weight_shape")
    shape = checks.kind(checks.tensor(tensors, "weight_shape", layer,
                                      needed_for="pack-quantized"), name, "iu")
    checks.shape(shape, name, (2,), "the (rows, columns) of a 2-D weight")
    rows, cols = (int(n) for n in shape)
    if rows != packed.shape[0] or cols <= 0:
        checks.refuse(f"{name} is ({rows}, {cols}) but {checks.label(layer, 'weight_packed')} "
                      f"has {packed.shape[0]} rows; the rows must agree and columns be positive")
    return rows, cols


def _naive(tensors, args: WeightArgs, layer: str):
    name = checks.label(layer, "weight")
    weight = checks.tensor(tensors, "weight", layer, needed_for="int- or float-quantized")
    checks.ndim(weight, name, (2,), "a quantized weight")
    if args.type == "float":
        if args.num_bits != 8:
            checks.refuse(f"{name}: float-quantized weights are FP8 (num_bits 8), not "
                          f"{args.num_bits}-bit; NVFP4 is nvfp4-pack-quantized")
        codes = fp8.decode(weight, "e4m3", name)
    else:
        if not 1 <= args.num_bits <= 8:
            checks.refuse(f"{name}: int-quantized codes of {args.num_bits} bits are not read "
                          "(compressed-tensors stores 1 to 8 bits as int8)")
        codes = checks.dtype(weight, name, np.int8, f"int{args.num_bits} codes")
    return _scaled_codes(codes, tensors, args, layer, packed_zero=False)


def _scaled_codes(codes, tensors, args: WeightArgs, layer: str, packed_zero: bool):
    """(codes - zero_point) * scale with the layer's scales, zero points and g_idx."""
    name = checks.label(layer, "weight_scale")
    scale = checks.kind(checks.tensor(tensors, "weight_scale", layer,
                                      needed_for="dequantization"), name, "f")
    block, scale = _scale_grid(scale, args, codes.shape, name)
    zero = None
    if not args.symmetric:  # symmetric: vLLM loads no zero point, compressed-tensors writes none
        if args.type == "float":
            checks.refuse(f"{checks.label(layer, 'weight')}: asymmetric float weights are not "
                          "read (compressed-tensors' FP8 and FP4 schemes are symmetric)")
        zero = _zero_point(tensors, args, scale.shape, layer, packed_zero)
    order = _g_idx(tensors, args, codes.shape[1], scale.shape[1], layer)
    if order is not None:
        scale, block = scale[:, order], (1, 1)
        zero = None if zero is None else zero[:, order]
    values = codes.astype(checks.working_dtype(scale))
    return blocks.apply(values, block, scale, zero)


def _scale_grid(scale, args: WeightArgs, shape, name: str):
    """(block, scale as (block rows, block columns)) of the strategy, the shape checked as
    compressed-tensors' initialize_qparams lays it out."""
    rows, cols = shape
    what = f"{args.describe()} scales of the {rows}x{cols} weight"
    if args.strategy == "tensor":
        if scale.size != 1 or scale.ndim > 2:
            checks.shape(scale, name, (1,), what)
        return (rows, cols), scale.reshape(1, 1)
    if args.strategy == "channel":
        if scale.shape == (rows,):
            scale = scale.reshape(rows, 1)
        return (1, cols), checks.shape(scale, name, (rows, 1), what)
    if args.strategy in GROUPED:
        if cols % args.group_size:
            checks.refuse(f"{name}: {cols:,} columns are not whole groups of {args.group_size} "
                          "(compressed-tensors requires that of the group strategies)")
        return (1, args.group_size), checks.shape(scale, name, (rows, cols // args.group_size),
                                                  what)
    block = args.block_structure
    return block, checks.shape(scale, name, blocks.grid(shape, block), what)


def _zero_point(tensors, args: WeightArgs, scale_shape, layer: str, packed_zero: bool):
    """The signed zero points, shaped as the scales: packed into int32 down the columns for
    pack-quantized channel and group scales (compressed-tensors' packed_dim=0), else as stored."""
    name = checks.label(layer, "weight_zero_point")
    zero = checks.kind(checks.tensor(tensors, "weight_zero_point", layer,
                                     needed_for="asymmetric quantization"), name, "iu")
    bits = args.num_bits
    # int32 is the packing's (compressed-tensors keeps unpacked zero points as int8)
    if packed_zero and args.strategy in ("channel", "group") and zero.dtype.kind == "i" \
            and zero.dtype.itemsize == 4:
        checks.ndim(zero, name, (2,), "a packed zero point")
        packing.check_words(zero, name, bits, scale_shape[0], 0, f"a column of {scale_shape[0]:,} "
                            "zero points")
        checks.shape(zero, name, (zero.shape[0], scale_shape[1]), "one column per scale column")
        return packing.unpack(zero, bits, scale_shape[0], axis=0).astype(np.int16) \
            - (1 << (bits - 1))
    if zero.size == 1 and len(scale_shape) == 2 and tuple(scale_shape) == (1, 1):
        return zero.reshape(1, 1)
    if args.strategy == "channel" and zero.shape == (scale_shape[0],):
        zero = zero.reshape(scale_shape)
    return checks.shape(zero, name, scale_shape, "one zero point per scale")


def _g_idx(tensors, args: WeightArgs, cols: int, groups: int, layer: str):
    """Each column's group from `weight_g_idx`, or None for column order (absent, or -1
    everywhere as compressed-tensors initialises it)."""
    if tensors.get("weight_g_idx") is None:
        return None
    name = checks.label(layer, "weight_g_idx")
    order = checks.kind(checks.array(tensors["weight_g_idx"], name), name, "iu")
    checks.shape(order, name, (cols,), "one group index per column")
    unused = order == -1
    if unused.all():
        return None
    if unused.any():
        checks.refuse(f"{name} is -1 (unset) for {int(unused.sum()):,} of {cols:,} columns only")
    if args.strategy not in GROUPED:
        checks.refuse(f"{name}: an activation order needs group scales, not {args.strategy}")
    if order.min() < 0 or order.max() >= groups:
        checks.refuse(f"{name} names groups {int(order.min())}..{int(order.max())}; the scales "
                      f"have {groups}")
    return order.astype(np.intp)


def _nvfp4(tensors, args: WeightArgs, layer: str):
    name = checks.label(layer, "weight_packed")
    if args.type != "float" or args.num_bits != 4 or args.strategy not in GROUPED:
        checks.refuse(f"{name}: nvfp4-pack-quantized holds FP4 values with group scales, not "
                      f"{args.describe()}")
    if not args.symmetric:
        checks.refuse(f"{name}: asymmetric NVFP4 is not read (compressed-tensors' decompressor "
                      "ignores its zero points)")
    packed = checks.tensor(tensors, "weight_packed", layer, needed_for="nvfp4-pack-quantized")
    checks.dtype(checks.ndim(packed, name, (2,), "an NVFP4 weight"), name, np.uint8,
                 "FP4 E2M1 pairs")
    rows, cols = packed.shape[0], 2 * packed.shape[1]
    scale_name = checks.label(layer, "weight_scale")
    scale = checks.tensor(tensors, "weight_scale", layer, needed_for="NVFP4")
    scale = fp8.decode(scale, "e4m3", scale_name) if scale.dtype.kind == "u" \
        else checks.kind(scale, scale_name, "f")
    block, scale = _scale_grid(scale, args, (rows, cols), scale_name)
    if tensors.get("weight_global_scale") is not None:
        global_name = checks.label(layer, "weight_global_scale")
        scale = _divided(scale, tensors["weight_global_scale"], global_name)
    values = np.empty((rows, cols), np.float32)
    values[:, 0::2], values[:, 1::2] = _E2M1[packed & 0x0F], _E2M1[packed >> 4]
    return blocks.apply(values.astype(checks.working_dtype(scale)), block, scale)


def _divided(scale, global_scale, name: str):
    """scale / global_scale in their float type (float32), as compressed-tensors divides."""
    global_scale = checks.kind(checks.array(global_scale, name), name, "f")
    if global_scale.size != 1:
        checks.shape(global_scale, name, (1,), "one global scale per tensor")
    dtype = checks.working_dtype(scale, global_scale)
    return scale.astype(dtype) / global_scale.astype(dtype).reshape(())
