"""Stored tensors that do not fit their format are refused with a `QuantcalcError` (field
"file") whose message names the tensor and says what is wrong, never an IndexError or a wrong
array: FP8 with scales, compressed-tensors layers and their quantization args (numpy only)."""

import numpy as np
import pytest

from quantcalc.errors import QuantcalcError
from quantcalc.formats.stored import compressed_tensors as ct
from quantcalc.formats.stored import fp8
from quantcalc.formats.stored.ct_args import weight_args

REFUSED = [
    (lambda: fp8.block_scaled(np.zeros((4, 4), np.int8), np.ones((1, 1), np.float32)),
     "weight has dtype int8; FP8 E4M3 values (one byte each) are stored as uint8"),
    (lambda: fp8.block_scaled(np.zeros((4, 4), np.float32), np.ones((1, 1), np.float32)),
     "stored as uint8"),
    (lambda: fp8.block_scaled(np.zeros((300, 200), np.uint8), np.ones((2, 2), np.float32),
                              layer="model.layers.3.mlp.up_proj"),
     "model.layers.3.mlp.up_proj.weight_scale_inv has shape (2, 2); expected (3, 2) for one "
     "scale per 128x128 tile of the 300x200 weight"),
    (lambda: fp8.block_scaled(np.zeros((4, 4), np.uint8), np.ones((1, 1), np.int32)),
     "weight_scale_inv has dtype int32; it must be a float"),
    (lambda: fp8.block_scaled(np.zeros(16, np.uint8), np.ones((1, 1), np.float32)),
     "weight has 1 dimensions (16,); an FP8 weight matrix has 2 to 5"),
    (lambda: fp8.block_scaled(np.zeros((4, 4), np.uint8), np.ones((1, 1), np.float32), [128]),
     "weight_block_size is [128]; it must be two positive integers"),
    (lambda: fp8.block_scaled(np.zeros((4, 4), np.uint8), np.ones((1, 1), np.float32), [0, 8]),
     "must be two positive integers"),
    (lambda: fp8.block_scaled(np.zeros((4, 4), np.uint8), np.ones((1, 1), np.float32),
                              [True, 8]), "must be two positive integers"),
    (lambda: fp8.scaled(np.zeros((4, 6), np.uint8), np.ones((6, 1), np.float32)),
     "weight_scale has shape (6, 1); a 4x6 weight takes one scale (shape (1,)) or one per row "
     "(4, 1)"),
    (lambda: fp8.scaled(np.zeros((4, 6), np.uint8), np.ones(1, np.float32), "e3m4"),
     "FP8 kind 'e3m4' is not known"),
    (lambda: fp8.scaled(np.zeros((4, 6), np.uint8), np.array(["a"])),
     "weight_scale has dtype <U1, not numbers"),
]


def refused(call):
    with pytest.raises(QuantcalcError) as error:
        call()
    assert error.value.field == "file"
    return error.value.message


@pytest.mark.parametrize("call,message", REFUSED)
def test_inconsistent_fp8_tensors_are_refused_with_their_name(call, message):
    assert message in refused(call)


LAYER = "model.layers.2.self_attn.o_proj"
NVFP4 = {"num_bits": 4, "type": "float", "strategy": "tensor_group", "group_size": 16}
INT4_GROUP32_ASYM = {"num_bits": 4, "type": "int", "symmetric": False, "strategy": "group",
                     "group_size": 32}


def packed_layer(**changes):
    """An int4 group-32 asymmetric pack-quantized 8x64 layer as compressed-tensors stores it,
    with `changes` applied (None deletes a tensor)."""
    tensors = {"weight_packed": np.zeros((8, 8), np.int32), "weight_shape": np.array([8, 64]),
               "weight_scale": np.ones((8, 2), np.float32),
               "weight_zero_point": np.zeros((1, 2), np.int32)}
    tensors.update(changes)
    return {key: value for key, value in tensors.items() if value is not None}


def decode(tensors, args=INT4_GROUP32_ASYM, format="pack-quantized"):
    return lambda: ct.dequantize(tensors, args, format, layer=LAYER)


def test_the_base_layer_decodes():
    assert ct.dequantize(packed_layer(), INT4_GROUP32_ASYM, "pack-quantized").shape == (8, 64)


CT_REFUSED = [
    (decode(packed_layer(weight_scale=None)),
     f"{LAYER}.weight_scale is missing (dequantization needs it); the layer has: "
     "weight_packed, weight_shape, weight_zero_point"),
    (decode(packed_layer(weight_packed=None)), f"{LAYER}.weight_packed is missing"),
    (decode(packed_layer(weight_shape=None)), f"{LAYER}.weight_shape is missing"),
    (decode(packed_layer(weight_zero_point=None)),
     f"{LAYER}.weight_zero_point is missing (asymmetric quantization needs it)"),
    (decode([1, 2]), f"{LAYER}.*: the layer's tensors must be a mapping"),
    (decode(packed_layer(weight_packed=np.zeros((8, 7), np.int32))),
     f"{LAYER}.weight_packed has 7 words along axis 1 (shape (8, 7)); 64 4-bit values of a row "
     "of 64 columns take 8"),
    (decode(packed_layer(weight_packed=np.zeros((8, 8), np.int64))),
     "weight_packed has dtype int64; packed 4-bit values are stored as int32"),
    (decode(packed_layer(weight_packed=np.zeros((2, 8, 8), np.int32))),
     "weight_packed has 3 dimensions (2, 8, 8); a pack-quantized weight has 2"),
    (decode(packed_layer(weight_shape=np.array([9, 64]))),
     "weight_shape is (9, 64) but model.layers.2.self_attn.o_proj.weight_packed has 8 rows"),
    (decode(packed_layer(weight_shape=np.array([8, 64, 1]))),
     "weight_shape has shape (3,); expected (2,) for the (rows, columns) of a 2-D weight"),
    (decode(packed_layer(weight_shape=np.array([8.0, 64.0]))),
     "weight_shape has dtype float64; it must be an integer"),
    (decode(packed_layer(weight_scale=np.ones((8, 4), np.float32))),
     "weight_scale has shape (8, 4); expected (8, 2) for int4 group 32 asymmetric scales of the "
     "8x64 weight"),
    (decode(packed_layer(weight_scale=np.ones((8, 2), np.int8))),
     "weight_scale has dtype int8; it must be a float"),
    (decode(packed_layer(weight_zero_point=np.zeros((2, 2), np.int32))),
     "weight_zero_point has 2 words along axis 0 (shape (2, 2)); 8 4-bit values of a column of 8 "
     "zero points take 1"),
    (decode(packed_layer(weight_zero_point=np.zeros((1, 3), np.int32))),
     "weight_zero_point has shape (1, 3); expected (1, 2) for one column per scale column"),
    (decode(packed_layer(weight_zero_point=np.zeros((8, 3), np.int8))),
     "weight_zero_point has shape (8, 3); expected (8, 2) for one zero point per scale"),
    (decode(packed_layer(weight_zero_point=np.zeros((1, 2), np.float32))),
     "weight_zero_point has dtype float32; it must be an integer"),
    (decode(packed_layer(weight_g_idx=np.zeros(63, np.int32))),
     "weight_g_idx has shape (63,); expected (64,) for one group index per column"),
    (decode(packed_layer(weight_g_idx=np.full(64, 2, np.int32))),
     "weight_g_idx names groups 2..2; the scales have 2"),
    (decode(packed_layer(weight_g_idx=np.r_[np.zeros(63, np.int32), -1])),
     "weight_g_idx is -1 (unset) for 1 of 64 columns only"),
    (decode(packed_layer(weight_g_idx=np.zeros(64, np.int32), weight_scale=np.ones((8, 1)),
                         weight_zero_point=np.zeros((1, 1), np.int32)),
            {**INT4_GROUP32_ASYM, "strategy": "channel", "group_size": None}),
     "weight_g_idx: an activation order needs group scales, not channel"),
    (decode(packed_layer(weight_packed=np.zeros((8, 20), np.int32),
                         weight_shape=np.array([8, 200]), weight_scale=np.ones((8, 20), np.float32),
                         weight_zero_point=np.zeros((1, 20), np.int32)),
            {**INT4_GROUP32_ASYM, "num_bits": 3, "group_size": 10}),
     "weight_packed holds 10 3-bit values per word with the spare bits unused"),
    (decode(packed_layer(weight_packed=np.zeros((8, 9), np.int32))),
     "weight_packed has 9 words along axis 1 (shape (8, 9)); 64 4-bit values of a row of 64 "
     "columns take 8"),
    (decode(packed_layer(weight_shape=np.array([8, 48]), weight_packed=np.zeros((8, 6), np.int32))),
     "weight_scale: 48 columns are not whole groups of 32"),
    (decode(packed_layer(), {**INT4_GROUP32_ASYM, "num_bits": 9}),
     "pack-quantized holds int values of 1 to 8 bits, not int 9-bit ones"),
    (decode(packed_layer(), INT4_GROUP32_ASYM, "marlin-24"),
     "compressed-tensors format 'marlin-24' is not decoded by quantcalc"),
    (decode({"weight": np.zeros((4, 4), np.int16), "weight_scale": np.ones((4, 1), np.float32)},
            {"num_bits": 8, "strategy": "channel"}, "int-quantized"),
     "weight has dtype int16; int8 codes are stored as int8"),
    (decode({"weight": np.zeros((4, 4), np.uint8), "weight_scale": np.ones(1, np.float32)},
            {"num_bits": 4, "type": "float"}, "float-quantized"),
     "float-quantized weights are FP8 (num_bits 8), not 4-bit"),
    (decode({"weight": np.zeros((4, 4), np.uint8), "weight_scale": np.ones(1, np.float32),
             "weight_zero_point": np.zeros(1, np.int8)},
            {"num_bits": 8, "type": "float", "symmetric": False}, "float-quantized"),
     "asymmetric float weights are not read"),
    (decode({"weight": np.zeros((4, 4), np.uint8), "weight_scale": np.ones((4, 2), np.float32)},
            {"num_bits": 8, "type": "float", "strategy": "channel"}, "float-quantized"),
     "weight_scale has shape (4, 2); expected (4, 1) for FP8 E4M3 per channel scales of the 4x4"),
    (decode({"weight": np.zeros((4, 4), np.uint8), "weight_scale": np.ones((1, 2), np.float32)},
            {"num_bits": 8, "type": "float", "strategy": "block", "block_structure": [2, 2]},
            "float-quantized"),
     "weight_scale has shape (1, 2); expected (2, 2) for FP8 E4M3 2x2 blocks scales"),
    (decode({"weight_packed": np.zeros((4, 8), np.uint8), "weight_scale": np.ones((4, 2), np.uint8),
             "weight_global_scale": np.ones(1, np.float32)}, NVFP4, "nvfp4-pack-quantized"),
     "weight_scale has shape (4, 2); expected (4, 1) for NVFP4 group 16 scales of the 4x16 weight"),
    (decode({"weight_packed": np.zeros((4, 8), np.int8), "weight_scale": np.ones((4, 1), np.uint8)},
            NVFP4, "nvfp4-pack-quantized"),
     "weight_packed has dtype int8; FP4 E2M1 pairs are stored as uint8"),
    (decode({"weight_packed": np.zeros((4, 8), np.uint8), "weight_scale": np.ones((4, 1), np.uint8),
             "weight_global_scale": np.ones(2, np.float32)}, NVFP4, "nvfp4-pack-quantized"),
     "weight_global_scale has shape (2,); expected (1,) for one global scale per tensor"),
    (decode({"weight_packed": np.zeros((4, 8), np.uint8),
             "weight_scale": np.ones((4, 1), np.uint8)},
            {**NVFP4, "symmetric": False}, "nvfp4-pack-quantized"),
     "asymmetric NVFP4 is not read"),
    (decode({"weight_packed": np.zeros((4, 8), np.uint8),
             "weight_scale": np.ones((4, 1), np.uint8)},
            {"num_bits": 4, "group_size": 16}, "nvfp4-pack-quantized"),
     "nvfp4-pack-quantized holds FP4 values with group scales, not int4 group 16 symmetric"),
]


@pytest.mark.parametrize("call,message", CT_REFUSED)
def test_inconsistent_compressed_tensors_layers_are_refused_with_their_name(call, message):
    assert message in refused(call)


ARGS_REFUSED = [
    ("not a dict", "weights quantization args must be a mapping, not str"),
    ({"num_bits": 0}, "num_bits is 0; it must be an integer of at least 1"),
    ({"num_bits": True}, "num_bits is True"),
    ({"num_bits": "4"}, "num_bits is 4; it must be an integer"),
    ({"type": "nf4"}, "type is 'nf4'; it must be 'int' or 'float'"),
    ({"symmetric": "yes"}, "symmetric is yes; it must be true or false"),
    ({"strategy": "group"}, "strategy group needs a positive group_size"),
    ({"strategy": "channel", "group_size": 128}, "group_size 128 needs strategy 'group'"),
    ({"group_size": -2}, "group_size is -2; it must be an integer of at least -1"),
    ({"strategy": "token"}, "strategy 'token' is not a stored weight layout (token and attn_head "
                            "scales are computed at run time"),
    ({"strategy": "block"}, "block_structure is None; the block strategy needs two positive"),
    ({"strategy": "block", "block_structure": [128, 0]}, "block_structure is [128, 0]"),
    ({"block_structure": [128, 128]}, "block_structure needs strategy 'block', not tensor"),
    ({"actorder": "sideways"}, "actorder 'sideways' is not known"),
]


@pytest.mark.parametrize("config,message", ARGS_REFUSED)
def test_quantization_args_from_a_config_are_checked(config, message):
    assert message in refused(lambda: weight_args(config, LAYER))
    assert LAYER in refused(lambda: weight_args(config, LAYER))


def test_args_accept_what_compressed_tensors_accepts():
    args = weight_args({"num_bits": 8, "type": "FLOAT", "strategy": "Block",
                        "block_structure": "128x128", "actorder": "static", "observer": "mse",
                        "dynamic": False})
    assert (args.type, args.strategy, args.block_structure, args.actorder) == \
        ("float", "block", (128, 128), "weight")
    assert weight_args({"actorder": True}).actorder == "group"

