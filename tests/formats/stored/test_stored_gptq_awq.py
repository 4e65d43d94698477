"""GPTQ and AWQ layers (formats/stored/gptq_awq.py) against an independent reference
transcribed from AutoGPTQ and AutoAWQ (tests/support/gptq_awq_reference.py): random weights
quantized by their quantizers, packed by their packing code, and decoded by quantcalc, which
must give (a) the value scale * (integer - zero) of the integers the reference packed, computed
exactly in float64 and rounded once to float32 (no rounding at all for float16 scales), (b) the
libraries' own float16 dequantization once rounded to float16, and (c) with float32 scales
(GPTQ), exactly the quantizer's dequantized weight."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from quantcalc.errors import QuantcalcError
from quantcalc.formats.stored import gptq_awq
from tests.support.stored import same_values

torch = pytest.importorskip("torch", reason="torch (CPU) runs the transcribed references")
from tests.support import gptq_awq_reference as reference  # noqa: E402


def arrays(packed):
    """The packed layer as a safetensors reader hands it over."""
    return {key: (value.numpy() if isinstance(value, torch.Tensor) else value)
            for key, value in packed.items() if key in ("qweight", "qzeros", "scales", "g_idx")}


def exact(intweight, zeros, scales, groups):
    """scale * (integer - zero), (out, in), computed exactly in float64 (a 24-bit scale times a
    9-bit integer) and rounded once to float32, as one float32 multiplication rounds it."""
    q = intweight.numpy().astype(np.float64)          # (in, out)
    z = zeros.numpy().astype(np.float64)[groups]       # (groups, out) -> (in, out)
    s = scales.float().numpy().astype(np.float64)[groups]
    return (s * (q - z)).T.astype(np.float32)


def gptq_layer(bits, group_size, sym, act_order, dtype, shape=(64, 256), v2=False, seed=0):
    out_features, in_features = shape
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(shape, generator=generator) * 0.02
    perm = torch.randperm(in_features, generator=generator) if act_order else None
    Q, scale, zero, g_idx = reference.gptq_fasterquant(weight, bits, group_size, sym, perm)
    return Q, reference.autogptq_pack(Q, scale, zero, g_idx, bits, dtype, v2=v2)


GPTQ_CASES = [  # bits, group_size, sym, act order (desc_act), weight dtype
    (4, 128, True, False, torch.float16), (4, 128, False, False, torch.float16),
    (4, 128, True, True, torch.float16), (4, 128, False, True, torch.float16),
    (4, 32, False, True, torch.float32), (4, -1, True, False, torch.float16),
    (8, 128, True, False, torch.float16), (8, 32, False, True, torch.float32),
    (3, 128, True, False, torch.float16), (3, 32, False, True, torch.float16),
    (2, 64, False, False, torch.float16), (2, 32, True, True, torch.float32),
]


@pytest.mark.parametrize("bits,group_size,sym,act_order,dtype", GPTQ_CASES,
                         ids=lambda v: str(v).replace("torch.", ""))
def test_gptq_decodes_the_references_packing_exactly(bits, group_size, sym, act_order, dtype):
    Q, packed = gptq_layer(bits, group_size, sym, act_order, dtype, seed=bits * group_size)
    ours = gptq_awq.dequantize_gptq(arrays(packed), bits, group_size, sym=sym,
                                    desc_act=act_order, layer="model.layers.0.mlp.up_proj")
    groups = packed["g_idx"].long().numpy()
    assert ours.dtype == np.float32 and ours.shape == tuple(Q.shape)
    assert same_values(ours, exact(packed["intweight"], packed["zeros"],
                                                         packed["scales"], groups))
    theirs = reference.autogptq_forward_weight(packed["qweight"], packed["qzeros"],
                                               packed["scales"], packed["g_idx"], bits)
    assert torch.equal(torch.from_numpy(ours.T.copy()).to(theirs.dtype), theirs)
    if dtype == torch.float32:  # the quantizer's own dequantized weight, bit for bit
        assert torch.equal(packed["intweight"], torch.round(packed["intweight"].float()).int())
        assert same_values(ours, Q.numpy())


def test_gptq_v2_zero_points_are_not_offset():
    Q, packed = gptq_layer(4, 32, False, True, torch.float32, v2=True, seed=9)
    ours = gptq_awq.dequantize_gptq(arrays(packed), 4, 32, sym=False, checkpoint_format="gptq_v2")
    assert same_values(ours, Q.numpy())
    v1 = gptq_awq.dequantize_gptq(arrays(packed), 4, 32, sym=False, checkpoint_format="gptq")
    assert not same_values(v1, Q.numpy())


def test_a_v1_zero_point_of_zero_is_read_as_autogptq_reads_it():
    """v1 stores z - 1: a zero point of 0 (a group with no negative value) becomes -1, which
    AutoGPTQ's pack ORs in as all ones over the following zero points of its word; quantcalc reads
    the file as AutoGPTQ's forward does, not as the quantizer meant it."""
    weight = torch.randn((32, 64), generator=torch.Generator().manual_seed(4)) * 0.02
    weight[:, :32] = weight[:, :32].abs()  # the first group of every row: zero point 0
    Q, scale, zero, g_idx = reference.gptq_fasterquant(weight, 4, 32, False)
    assert (zero[:, 0] == 0).all()
    packed = reference.autogptq_pack(Q, scale, zero, g_idx, 4, torch.float32)
    ours = gptq_awq.dequantize_gptq(arrays(packed), 4, 32, sym=False)
    theirs = reference.autogptq_forward_weight(packed["qweight"], packed["qzeros"],
                                               packed["scales"], packed["g_idx"], 4)
    assert same_values(ours, theirs.numpy().T)
    assert not same_values(ours, Q.numpy())


AWQ_CASES = [(128, (64, 256), torch.float16), (64, (96, 128), torch.float32),
             (32, (160, 64), torch.float16), (-1, (32, 96), torch.float32),
             (128, (256, 512), torch.float16)]  # AutoAWQ's packing needs out % 32 == 0


@pytest.mark.parametrize("group_size,shape,dtype", AWQ_CASES, ids=str)
def test_awq_decodes_the_references_packing_exactly(group_size, shape, dtype):
    generator = torch.Generator().manual_seed(shape[0] + group_size)
    weight = (torch.randn(shape, generator=generator) * 0.02).to(dtype)
    size = shape[1] if group_size == -1 else group_size
    w, scales, zeros = reference.awq_pseudo_quantize(weight, 4, size)
    packed = reference.awq_from_linear(w, 4, group_size, scales, zeros)
    ours = gptq_awq.dequantize_awq(arrays(packed), 4, group_size, layer="model.layers.1.mlp")
    groups = np.arange(shape[1]) // size
    assert ours.dtype == np.float32 and ours.shape == shape
    assert same_values(ours, exact(packed["intweight"], packed["zeros"],
                                                         packed["scales"], groups))
    theirs = reference.awq_dequantize_gemm(packed["qweight"], packed["qzeros"],
                                           packed["scales"], 4, size)
    assert theirs.dtype == torch.float16
    assert torch.equal(torch.from_numpy(ours.T.copy()).half(), theirs)


def test_awqs_interleaved_order_is_undone():
    """Column j of every group of eight sits in nibble [0, 4, 1, 5, 2, 6, 3, 7][j]."""
    columns = torch.arange(32) % 16  # output column j holds the value j % 16 in every row
    weight = columns[:, None].repeat(1, 4).float()  # (out 32, in 4)
    packed = reference.awq_from_linear(weight, 4, -1, torch.ones(32, 1), torch.zeros(32, 1))
    word = int(packed["qweight"][0, 0]) & 0xFFFFFFFF
    assert [(word >> (4 * i)) & 0xF for i in range(8)] == [0, 2, 4, 6, 1, 3, 5, 7]
    ours = gptq_awq.dequantize_awq(arrays(packed), 4, -1)
    assert np.array_equal(ours, weight.numpy())


@settings(max_examples=40, deadline=None)
@given(bits=st.sampled_from([2, 3, 4, 8]), words=st.integers(1, 3), out_words=st.integers(1, 2),
       group_size=st.sampled_from([-1, 8, 32, 96]), sym=st.booleans(), shuffled=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_gptq_any_width_and_grouping_decodes_element_by_element(bits, words, out_words,
                                                                group_size, sym, shuffled, seed):
    rng = np.random.default_rng(seed)
    in_features, out_features = 32 * words, 32 * out_words
    size = in_features if group_size == -1 else group_size
    groups = -(-in_features // size)
    g_idx = torch.from_numpy((np.arange(in_features) // size).astype(np.int32))
    if shuffled:
        g_idx = g_idx[torch.from_numpy(rng.permutation(in_features))]
    maxq = 2 ** bits - 1
    zero = torch.full((out_features, groups), (maxq + 1) / 2) if sym else \
        torch.from_numpy(rng.integers(1, maxq + 1, (out_features, groups)).astype(np.float32))
    scale = torch.from_numpy(rng.uniform(1e-3, 1e-1, (out_features, groups)).astype(np.float32))
    q = torch.from_numpy(rng.integers(0, maxq + 1, (out_features, in_features)).astype(np.float32))
    Q = scale[:, g_idx.long()] * (q - zero[:, g_idx.long()])
    packed = reference.autogptq_pack(Q, scale, zero, g_idx, bits, torch.float32)
    ours = gptq_awq.dequantize_gptq(arrays(packed), bits, group_size, sym=sym)
    groups = g_idx.long().numpy()
    assert same_values(ours, exact(packed["intweight"], packed["zeros"],
                                                         packed["scales"], groups))


@settings(max_examples=40, deadline=None)
@given(groups=st.integers(1, 4), group_size=st.sampled_from([-1, 8, 32, 128]),
       out_words=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_awq_any_grouping_decodes_element_by_element(groups, group_size, out_words, seed):
    """Integers, zero points and float16 scales chosen at random: the weight (q - z) * s is
    exact in float32, so AutoAWQ's from_linear packs exactly q and z."""
    rng = np.random.default_rng(seed)
    in_features = groups * (8 if group_size == -1 else group_size)
    groups = 1 if group_size == -1 else groups
    out_features = 32 * out_words
    size = in_features if group_size == -1 else group_size
    q = rng.integers(0, 16, (out_features, in_features))
    zeros = rng.integers(0, 16, (out_features, groups))
    scales = rng.uniform(1e-3, 1e-1, (out_features, groups)).astype(np.float16)
    column_group = np.arange(in_features) // size
    weight = (q - zeros[:, column_group]) * scales[:, column_group].astype(np.float32)
    packed = reference.awq_from_linear(torch.from_numpy(weight.astype(np.float32)), 4,
                                       group_size, torch.from_numpy(scales).float(),
                                       torch.from_numpy(zeros).float())
    assert np.array_equal(packed["intweight"].numpy().T, q)
    ours = gptq_awq.dequantize_awq(arrays(packed), 4, group_size)
    assert same_values(ours, weight)


GPTQ_REFUSED = [
    (dict(bits=5), "5-bit values are not read here (quantcalc reads 2, 3, 4, 8 bits)"),
    (dict(group_size=0), "group_size is 0; it must be a positive integer or -1"),
    (dict(checkpoint_format="marlin"), "GPTQ checkpoint_format 'marlin' is not read"),
    (dict(drop="scales"),
     "model.layers.5.mlp.gate_proj.scales is missing (dequantization needs it)"),
    (dict(drop="qzeros", sym=False), "qzeros is missing (asymmetric GPTQ needs it)"),
    (dict(change=("scales", np.ones((3, 64), np.float16))),
     "scales has 3 rows; 256 input columns in groups of 128 take 2"),
    (dict(change=("scales", np.ones((2, 60), np.float16))),
     "scales has 60 columns; model.layers.5.mlp.gate_proj.qweight holds 64 output columns"),
    (dict(change=("qweight", np.zeros((32, 64), np.int64))),
     "qweight has dtype int64; packed 4-bit values are stored as int32"),
    (dict(change=("g_idx", np.zeros(200, np.int32))),
     "qweight has 32 words along axis 0 (shape (32, 64)); 200 4-bit values of the 200 input "
     "columns take 25"),
    (dict(change=("g_idx", np.full(256, 3, np.int32))),
     "g_idx names groups 3..3; the scales have 2"),
    (dict(change=("g_idx", np.arange(256, dtype=np.int32)[::-1] // 128), desc_act=False),
     "g_idx is shuffled but desc_act is false"),
    (dict(change=("qzeros", np.zeros((2, 8), np.int32))),
     "qzeros holds zero point 1 where sym is true (2^(bits-1) = 8): vLLM would use 8 and "
     "AutoGPTQ 1"),
    (dict(change=("qzeros", np.zeros((2, 7), np.int32))),
     "qzeros has 7 words along axis 1 (shape (2, 7)); 64 4-bit values of the output columns "
     "take 8"),
]


@pytest.mark.parametrize("options,message", GPTQ_REFUSED)
def test_inconsistent_gptq_layers_are_refused_with_their_name(options, message):
    _, packed = gptq_layer(4, 128, True, False, torch.float16, shape=(64, 256))
    layer = arrays(packed)
    options = dict(options)
    if "drop" in options:
        del layer[options.pop("drop")]
    if "change" in options:
        key, value = options.pop("change")
        layer[key] = value
    settings_ = dict(bits=4, group_size=128, sym=True, desc_act=None) | options
    with pytest.raises(QuantcalcError) as error:
        gptq_awq.dequantize_gptq(layer, layer="model.layers.5.mlp.gate_proj", **settings_)
    assert message in error.value.message and error.value.field == "file"
    assert "model.layers.5.mlp.gate_proj" in error.value.message


AWQ_REFUSED = [
    (dict(bits=8), "8-bit values are not read here (quantcalc reads 4 bits)"),
    (dict(version="gemv"), "AWQ version 'gemv' is not read"),
    (dict(drop="qzeros"), "qzeros is missing (AWQ's GEMM layout needs it)"),
    (dict(change=("scales", np.ones((3, 256), np.float16))),
     "scales has 3 rows; 256 input columns in groups of 128 take 2"),
    (dict(change=("qzeros", np.zeros((2, 16), np.int32))),
     "qzeros has shape (2, 16); expected (2, 32) for one row per group, 8 columns per word"),
    (dict(change=("qweight", np.zeros((256, 32), np.uint32))),
     "qweight has dtype uint32; packed 4-bit values are stored as int32"),
]


@pytest.mark.parametrize("options,message", AWQ_REFUSED)
def test_inconsistent_awq_layers_are_refused_with_their_name(options, message):
    weight = torch.randn((256, 256), generator=torch.Generator().manual_seed(2)) * 0.02
    w, scales, zeros = reference.awq_pseudo_quantize(weight, 4, 128)
    layer = arrays(reference.awq_from_linear(w, 4, 128, scales, zeros))
    options = dict(options)
    if "drop" in options:
        del layer[options.pop("drop")]
    if "change" in options:
        key, value = options.pop("change")
        layer[key] = value
    with pytest.raises(QuantcalcError) as error:
        gptq_awq.dequantize_awq(layer, **(dict(bits=4, group_size=128) | options),
                                layer="model.layers.7.self_attn.k_proj")
    assert message in error.value.message and error.value.field == "file"
