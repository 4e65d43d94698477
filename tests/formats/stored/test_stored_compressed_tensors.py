"""compressed-tensors' quantized layers (formats/stored/compressed_tensors.py) against the
library's own compressors: random weights quantized with its `calculate_qparams`, compressed by
its registered compressors (`BaseCompressor.get_value_from_registry(format).compress`, what
llm-compressor's save calls per module) and decompressed by the same (`.decompress`); quantcalc
decodes the compressed arrays as a safetensors reader hands them over (F8 as bytes, BF16 widened
to float32) and must give the decompressor's values bit for bit. float32 weights: the same
float32 bits. bf16/f16 weights: the library computes in bf16/f16, i.e. rounds the exact float32
product once more; quantcalc's float32 rounded once to that type must give its bits."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from quantcalc.formats.stored import compressed_tensors as ct
from quantcalc.formats.stored.ct_args import weight_args
from tests.support.stored import rounded_like, same_values, stored

torch = pytest.importorskip("torch", reason="torch (CPU) runs compressed-tensors")
pytest.importorskip("compressed_tensors", reason="compressed-tensors is the reference here")
from compressed_tensors.compressors.base import BaseCompressor  # noqa: E402
from compressed_tensors.compressors.pack_quantized.helpers import (  # noqa: E402
    pack_to_int32, unpack_from_int32)
from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme  # noqa: E402
from compressed_tensors.quantization.utils import (  # noqa: E402
    calculate_qparams, generate_gparam)

F32, BF16, F16 = torch.float32, torch.bfloat16, torch.float16


def observed_range(weight, args):
    """Min and max per scale, laid out as compressed-tensors' initialize_qparams shapes them."""
    rows, cols = weight.shape
    if args.strategy in ("group", "tensor_group"):
        grouped = weight.unflatten(-1, (cols // args.group_size, args.group_size))
        return grouped.amin(-1), grouped.amax(-1)
    if args.strategy == "channel":
        return weight.amin(1, keepdim=True), weight.amax(1, keepdim=True)
    if args.strategy == "block":
        height, width = args.block_structure
        padded = torch.nn.functional.pad(weight, (0, -cols % width, 0, -rows % height))
        tiles = padded.unflatten(0, (-1, height)).unflatten(2, (-1, width))
        return tiles.amin((1, 3)), tiles.amax((1, 3))
    return weight.amin(), weight.amax()


def compress(format, arguments, weight):
    """compressed-tensors' compressed tensors of `weight` and its own decompressed weight."""
    args = QuantizationArgs(**arguments)
    low, high = observed_range(weight, args)
    global_scale = generate_gparam(weight.amin(), weight.amax()) \
        if args.strategy == "tensor_group" else None
    scale, zero = calculate_qparams(low, high, args, global_scale=global_scale)
    state = {"weight": weight, "weight_scale": scale, "weight_zero_point": zero}
    if global_scale is not None:
        state["weight_global_scale"] = global_scale
    scheme = QuantizationScheme(targets=["Linear"], weights=args)
    compressor = BaseCompressor.get_value_from_registry(format)
    compressed = compressor.compress(state, scheme)
    return compressed, compressor.decompress(compressed, scheme)["weight"]


def assert_same_as_the_library(ours, theirs):
    assert ours.dtype == np.float32 and ours.shape == tuple(theirs.shape)
    if theirs.dtype == torch.float32:
        assert same_values(ours, theirs.numpy())
    else:  # the library's bf16/f16 product is the float32 product rounded once
        assert torch.equal(rounded_like(ours, theirs).view(torch.int16), theirs.view(torch.int16))


def group(size, symmetric=True, bits=4):
    return dict(num_bits=bits, symmetric=symmetric, strategy="group", group_size=size)


def channel(symmetric=True, bits=4):
    return dict(num_bits=bits, symmetric=symmetric, strategy="channel")


def block(height, width, symmetric=True, bits=8, kind="int"):
    return dict(num_bits=bits, type=kind, symmetric=symmetric, strategy="block",
                block_structure=[height, width])


FP8 = dict(num_bits=8, type="float", symmetric=True)
NVFP4 = dict(num_bits=4, type="float", symmetric=True, strategy="tensor_group", group_size=16)
CASES = [  # (format, weights args, shape, dtype)
    ("pack-quantized", group(128), (96, 512), BF16),            # W4A16
    ("pack-quantized", group(128, False), (96, 512), BF16),     # W4A16_ASYM
    ("pack-quantized", group(32), (64, 256), F32),
    ("pack-quantized", group(32, False), (64, 256), F32),
    ("pack-quantized", group(32, False), (70, 96), F16),
    ("pack-quantized", group(128, False), (33, 384), F32),      # rows not a multiple of 8
    ("pack-quantized", channel(), (64, 200), BF16),             # columns not a multiple of 8
    ("pack-quantized", channel(False), (64, 200), F32),
    ("pack-quantized", dict(num_bits=4, strategy="tensor"), (32, 64), F32),
    ("pack-quantized", dict(num_bits=4, strategy="tensor", symmetric=False), (32, 64), F32),
    ("pack-quantized", group(128, bits=8), (64, 256), BF16),    # W8A16
    ("pack-quantized", group(128, False, bits=8), (64, 256), F32),
    ("pack-quantized", channel(False, bits=8), (48, 100), F32),
    ("pack-quantized", group(32, False, bits=2), (64, 128), F32),
    ("pack-quantized", group(32, False, bits=3), (40, 96), F32),  # values straddle words
    ("pack-quantized", channel(False, bits=5), (45, 77), F32),
    ("pack-quantized", block(32, 64, False, bits=4), (100, 150), F32),
    ("int-quantized", channel(bits=8), (64, 256), BF16),        # W8A8 int8
    ("int-quantized", channel(False, bits=8), (64, 256), F32),
    ("int-quantized", group(128, False, bits=8), (64, 256), F32),
    ("int-quantized", dict(num_bits=8, strategy="tensor"), (64, 256), F32),
    ("int-quantized", group(32, False, bits=4), (64, 128), BF16),
    ("int-quantized", block(128, 128), (300, 200), F32),
    ("float-quantized", dict(FP8, strategy="tensor"), (64, 256), BF16),   # FP8
    ("float-quantized", dict(FP8, strategy="tensor"), (64, 256), F32),
    ("float-quantized", dict(FP8, strategy="channel"), (64, 256), BF16),  # FP8_DYNAMIC
    ("float-quantized", dict(FP8, strategy="channel"), (64, 256), F32),
    ("float-quantized", dict(FP8, strategy="group", group_size=128), (64, 256), F32),
    ("float-quantized", block(128, 128, kind="float"), (300, 200), BF16),  # FP8_BLOCK
    ("float-quantized", block(128, 128, kind="float"), (300, 200), F32),
    ("naive-quantized", dict(FP8, strategy="channel"), (32, 64), F32),
    ("nvfp4-pack-quantized", NVFP4, (64, 256), BF16),           # NVFP4A16
    ("nvfp4-pack-quantized", NVFP4, (48, 64), F32),
    ("nvfp4-pack-quantized", dict(NVFP4, strategy="group"), (32, 96), BF16),  # no global scale
]


def case_id(case):
    format, arguments, shape, dtype = case
    return f"{format}-{weight_args(arguments).describe()}-{shape[0]}x{shape[1]}-" \
           f"{str(dtype).split('.')[-1]}".replace(" ", "_")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_decoding_equals_the_librarys_decompressor(case):
    format, arguments, shape, dtype = case
    generator = torch.Generator().manual_seed(len(case_id(case)))
    weight = (torch.randn(shape, generator=generator) * 0.05).to(dtype)
    compressed, theirs = compress(format, arguments, weight)
    ours = ct.dequantize({key: stored(value) for key, value in compressed.items()}, arguments,
                         format, layer="model.layers.0.mlp.down_proj")
    assert_same_as_the_library(ours, theirs)


def activation_ordered(arguments, weight, seed):
    """A layer quantized in a shuffled column order, as GPTQ with actorder=group saved it:
    compressed-tensors quantizes and packs the permuted weight (its groups are consecutive there),
    then the codes are unpacked, put back in the original column order and packed again with
    its own helpers, and `weight_g_idx` gives each column its group."""
    group_size, bits = arguments["group_size"], arguments["num_bits"]
    rows, cols = weight.shape
    order = torch.randperm(cols, generator=torch.Generator().manual_seed(seed))
    compressed, theirs_permuted = compress("pack-quantized", arguments, weight[:, order])
    codes = unpack_from_int32(compressed["weight_packed"], bits, torch.Size((rows, cols)))
    original = torch.empty_like(codes)
    original[:, order] = codes
    compressed["weight_packed"] = pack_to_int32(original, bits)
    g_idx = torch.empty(cols, dtype=torch.int32)
    g_idx[order] = torch.arange(cols, dtype=torch.int32) // group_size
    compressed["weight_g_idx"] = g_idx
    theirs = torch.empty_like(theirs_permuted)
    theirs[:, order] = theirs_permuted
    return compressed, theirs


def old_process_group_dequantize(codes, scale, zero, g_idx, group_size):
    """compressed-tensors' `_process_group` while it had activation order (before 0.20,
    quantization/lifecycle/forward.py): sort the columns by g_idx, dequantize consecutive groups,
    undo the sort."""
    permutation = torch.argsort(g_idx)
    x = codes.index_select(-1, permutation).unflatten(-1, (-1, group_size)).to(scale.dtype)
    if zero is not None:
        x = x - zero.unsqueeze(-1).to(scale.dtype)
    output = (x * scale.unsqueeze(-1)).flatten(start_dim=-2)
    return output.index_select(-1, torch.argsort(permutation))


@pytest.mark.parametrize("arguments,shape,dtype", [
    (group(32, False), (64, 256), F32), (group(128), (48, 512), BF16),
    (group(16, False, bits=8), (40, 64), F32), (group(32, False, bits=3), (24, 96), F32)])
def test_an_activation_order_g_idx_decodes_each_column_with_its_group(arguments, shape, dtype):
    weight = (torch.randn(shape, generator=torch.Generator().manual_seed(7)) * 0.05).to(dtype)
    compressed, theirs = activation_ordered(arguments, weight, seed=sum(shape))
    arrays = {key: stored(value) for key, value in compressed.items()}
    ours = ct.dequantize(arrays, dict(arguments, actorder="group"), "pack-quantized")
    assert_same_as_the_library(ours, theirs)
    bits = arguments["num_bits"]
    codes = unpack_from_int32(compressed["weight_packed"], bits, torch.Size(shape))
    zero = None
    if not arguments["symmetric"]:
        zero = unpack_from_int32(compressed["weight_zero_point"], bits,
                                 compressed["weight_scale"].shape, packed_dim=0)
    old = old_process_group_dequantize(codes, compressed["weight_scale"], zero,
                                       compressed["weight_g_idx"], arguments["group_size"])
    assert_same_as_the_library(ours, old)


def test_a_g_idx_of_minus_ones_is_column_order():
    weight = torch.randn((16, 64), generator=torch.Generator().manual_seed(1))
    compressed, theirs = compress("pack-quantized", group(32, False), weight)
    arrays = {key: stored(value) for key, value in compressed.items()}
    arrays["weight_g_idx"] = np.full(64, -1, np.int32)
    assert same_values(ct.dequantize(arrays, group(32, False), "pack-quantized"), theirs.numpy())


@settings(max_examples=60, deadline=None)
@given(bits=st.integers(1, 8), rows=st.integers(1, 40), groups=st.integers(1, 5),
       size=st.sampled_from([1, 3, 8, 16, 32, 100, 128]), symmetric=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_any_bits_shape_and_group_size_unpack_as_the_library_packs(bits, rows, groups, size,
                                                                   symmetric, seed):
    """Codes and zero points packed by compressed-tensors' pack_to_int32 decode to
    (code - zero_point[group]) * scale[group], element by element, for every width 1..8."""
    rng = np.random.default_rng(seed)
    cols, low = groups * size, -(1 << (bits - 1))
    codes = rng.integers(low, -low, (rows, cols), dtype=np.int8)
    scale = rng.uniform(1e-3, 1, (rows, groups)).astype(np.float32)
    zero = rng.integers(low, -low, (rows, groups), dtype=np.int8)
    arrays = {"weight_packed": pack_to_int32(torch.from_numpy(codes), bits).numpy(),
              "weight_shape": np.array([rows, cols]), "weight_scale": scale}
    if not symmetric:
        arrays["weight_zero_point"] = pack_to_int32(torch.from_numpy(zero), bits,
                                                    packed_dim=0).numpy()
    ours = ct.dequantize(arrays, group(size, symmetric, bits), "pack-quantized")
    column_group = np.arange(cols) // size
    shift = 0 if symmetric else zero[:, column_group].astype(np.float32)
    expected = (codes.astype(np.float32) - shift) * scale[:, column_group]
    assert same_values(ours, expected)


def test_describe_names_the_stored_format():
    assert weight_args(group(128)).describe() == "int4 group 128 symmetric"
    assert weight_args(channel(False, 8)).describe() == "int8 per channel asymmetric"
    assert weight_args(block(128, 128, kind="float")).describe() == "FP8 E4M3 128x128 blocks"
    assert weight_args(dict(FP8, strategy="tensor")).describe() == "FP8 E4M3 per tensor"
    assert weight_args(NVFP4).describe() == "NVFP4 group 16"
    assert weight_args({"num_bits": 4, "group_size": 64}).strategy == "group"  # inferred
    assert weight_args({"num_bits": 8, "group_size": -1}).strategy == "channel"
    assert weight_args({"num_bits": 8}).strategy == "tensor"
