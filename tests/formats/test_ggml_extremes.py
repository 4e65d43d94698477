"""llama.cpp's types on values their fp16 scales cannot hold (issue 26, second round).

ggml stores such blocks with infinite scales (Q4_0 ... Q8_0, Q2_K, Q4_K, Q5_K: every value
reconstructs to inf or NaN) or, once its float32 searches overflow (sums of x^2 and x^3), with
zero scales (Q3_K, Q6_K, IQ4_XS: every value becomes 0) or NaN ones (IQ4_NL). quantcalc refuses
all of them alike, with one message, and agrees with ggml bit for bit on every tensor ggml does
store with finite scales."""

import warnings

import numpy as np
import pytest

from tests.support import ggml_reference as ggml
from quantcalc import Config, QuantcalcError, analyze
from quantcalc.engine import compare
from quantcalc.formats.ggml import types as ggml_types

GGML_NAMES = {"iq4_nl": "iq4_nl", "iq4_xs": "iq4_xs", "q8_0": "q8_0", "q4_0": "q4_0",
              "q4_1": "q4_1", "q5_0": "q5_0", "q5_1": "q5_1", "q2_k": "q2_K", "q3_k": "q3_K",
              "q4_k": "q4_K", "q5_k": "q5_K", "q6_k": "q6_K"}
WIDTH = 256
IMATRIX = np.random.default_rng(5).uniform(0.1, 4, WIDTH).astype(np.float32)


def _huge(kind):
    rng = np.random.default_rng(11)
    if kind == "32 x 1e38":
        return np.full((1, WIDTH), 1e38, np.float32)
    if kind == "+-1e38":
        return np.where(np.arange(WIDTH) % 2, 1e38, -1e38).astype(np.float32).reshape(1, -1)
    if kind == "3e38 and zeros":
        x = np.zeros((2, WIDTH), np.float32)
        x[:, ::5] = 3e38
        return x
    if kind == "normal x 1e38":
        return np.clip(rng.standard_normal((2, WIDTH)) * 1e38, -3e38, 3e38).astype(np.float32)
    if kind == "normal x 1e20":
        return (rng.standard_normal((2, WIDTH)) * 1e20).astype(np.float32)
    if kind == "one 1e30 among ones":
        x = np.ones((2, WIDTH), np.float32)
        x[1, 7] = -1e30
        return x
    raise KeyError(kind)


HUGE = ["32 x 1e38", "+-1e38", "3e38 and zeros", "normal x 1e38", "normal x 1e20",
        "one 1e30 among ones"]


def _refusal(name, x, importance=None):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning on the way to the refusal
        with pytest.raises(QuantcalcError) as err:
            analyze(x, Config(format=name), importance=importance)
    return err.value


@pytest.mark.parametrize("kind", HUGE)
@pytest.mark.parametrize("name", sorted(GGML_NAMES))
def test_every_llama_cpp_type_refuses_values_beyond_its_fp16_scales_alike(name, kind):
    x = _huge(kind)
    refusal = _refusal(name, x)
    label = Config(format=name).format_row.label
    assert refusal.message.startswith(f"{label} stores its scales as fp16 (at most 65504); a "
                                      f"block here, whose largest magnitude is ")
    assert "needs more" in refusal.message and refusal.field == "format"
    if Config(format=name).format_row.uses_importance:
        assert _refusal(name, x, IMATRIX).message == refusal.message


def test_iq4_nl_no_longer_raises_index_error_on_1e38():
    x = np.full((1, 32), 1e38, np.float32)
    with pytest.raises(QuantcalcError, match="fp16"):
        analyze(x, Config(format="iq4_nl"))


def test_compare_with_the_llama_cpp_preset_on_1e38_is_one_clear_error():
    x = np.full((1, WIDTH), 1e38, np.float32)
    skipped = []
    with pytest.raises(QuantcalcError) as err:
        compare.compare(x, compare.PRESETS["llama.cpp"], skipped=skipped)
    assert "no configuration fits" in err.value.message
    assert len(skipped) == len(compare.PRESETS["llama.cpp"])
    assert all("stores its scales as fp16" in s["reason"] for s in skipped)


def test_best_index_is_ggmls_for_nan_and_infinities():
    """best_index_int8 on NaN: both range checks fail and the binary search ends at the top
    level (15); +inf is 15 and -inf 0. The table lookup must not index with NaN."""
    x = np.float32([np.nan, np.inf, -np.inf, -np.nan, 0.0])
    assert ggml_types.best_index(x).tolist() == [15, 15, 0, 15, 8]


@pytest.mark.parametrize("name", sorted(GGML_NAMES))
@pytest.mark.parametrize("with_imatrix", [False, True], ids=["reference", "imatrix"])
def test_near_the_fp16_limit_refused_exactly_where_ggml_stores_no_finite_scale(name,
                                                                                with_imatrix):
    """From 1e4 to 1e19 (where the searches' squares overflow): where ggml's reconstruction is
    finite and not all zero, quantcalc's is the same to the bit; elsewhere it refuses."""
    if with_imatrix and name == "q8_0":
        pytest.skip("Q8_0 has no importance-weighted search")
    base = np.random.default_rng(1).standard_normal((2, WIDTH)).astype(np.float32)
    base /= np.abs(base).max()
    imatrix = IMATRIX if with_imatrix else None
    stored = refused = 0
    for exponent in np.arange(4, 19.5, 0.25):
        x = (base * np.float32(10.0 ** exponent)).astype(np.float32)
        _, expected = ggml.quantize(GGML_NAMES[name], x, imatrix)
        finite = bool(np.isfinite(expected).all() and np.any(expected != 0))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                result = analyze(x, Config(format=name), importance=imatrix)
            except QuantcalcError as exc:
                assert not finite, (exponent, exc.message)
                assert "stores its scales as fp16" in exc.message
                refused += 1
                continue
        assert finite, exponent
        assert np.array_equal(result.per_value.dequantized.astype(np.float32).view(np.uint32),
                              expected.reshape(-1).view(np.uint32)), exponent
        stored += 1
    assert stored and refused
