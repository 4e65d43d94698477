"""Framework conventions against the frameworks themselves (test-only references in
tests/support/framework_refs.py): codes, scales, zero points and reconstructions bit for bit, on
hypothesis tensors with exact ties, tiny (1e-6) and huge magnitudes, and on real MiniLM weights;
refusals with their reasons; `exact` unchanged."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantcalc.engine.analysis import analyze
from quantcalc.engine.config import Config
from quantcalc.errors import QuantcalcError
from quantcalc.formats import conventions
from tests.support.convention_cases import CASES, assert_identical, name

ALL = [case for cases in CASES.values() for case in cases]
HEAVY = ("entropy", "mse")  # ModelOpt's entropy search loops in Python over 1920 candidates


def _ties(draw, shape):
    """Values on half steps of 2^e, with one at 127 or 127.5 steps (7 or 7.5 at 4 bits):
    x · (1 / scale) lands exactly on k + 0.5 for many of them."""
    e = draw(st.integers(-30, 30))
    n = int(np.prod(shape))
    halves = draw(st.lists(st.integers(-255, 255), min_size=n, max_size=n))
    top = draw(st.sampled_from([254, 255, 14, 15]))
    values = np.array(halves, np.float64) / 2
    values[draw(st.integers(0, n - 1))] = top / 2 * draw(st.sampled_from([1, -1]))
    return (values * 2.0 ** e).reshape(shape)


@st.composite
def tensors(draw):
    shape = (draw(st.integers(2, 5)), draw(st.integers(2, 48)))
    kind = draw(st.sampled_from(["normal", "ties", "ties", "heavy"]))
    if kind == "ties":
        x = _ties(draw, shape)
    else:
        rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
        x = rng.standard_normal(shape) if kind == "normal" else rng.standard_t(2, shape)
        x *= draw(st.sampled_from([1e-6, 1e-3, 1.0, 1e3, 1e30]))
        x += draw(st.sampled_from([0.0, 0.0, 1.0])) * np.abs(x).max()  # one-sided sometimes
    return x.astype(np.float32)


@pytest.mark.parametrize("case", [c for c in ALL if c.get("calibration") not in HEAVY],
                         ids=name)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=tensors())
def test_bit_identical_to_the_framework(case, x):
    assert_identical(x, case)


@pytest.mark.parametrize("case", [c for c in ALL if c.get("calibration") in HEAVY], ids=name)
@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=tensors())
def test_histogram_searches_bit_identical(case, x):
    assert_identical(x, case)


@pytest.mark.slow
@pytest.mark.parametrize("convention", sorted(CASES))
def test_minilm_weights_bit_identical(convention):
    """Every offered setting on two real weights of all-MiniLM-L6-v2 (384 × 1536 and a
    1536 × 384 one with a 44× outlier)."""
    from quantcalc.readers import checkpoint
    from tests.support import corpus
    path = str(corpus.file_or_skip("minilm-safetensors"))
    for tensor in ("encoder.layer.0.intermediate.dense.weight",
                   "encoder.layer.0.output.dense.weight"):
        x = checkpoint.read_tensor(path, tensor)
        for case in CASES[convention]:
            assert_identical(x, case)


def test_a_float32_tie_rounds_as_pytorch_does():
    """amax 127.5 gives PyTorch's scale 1; 0.5 and 2.5 are ties that go to even (0 and 2), as
    torch's nearbyint does, and exact's amax / 127 scale moves 2.5 to 2.5 · 127 / 127.5."""
    x = np.array([127.5, 0.5, 2.5, -1.5], np.float32)
    result = analyze(x, Config(convention="pytorch"), keep=4)
    assert result.params.scale[0] == 1.0
    assert list(result.per_value.codes) == [127, 0, 2, -2]


@pytest.mark.parametrize("settings_, field, words", [
    ({"convention": "pytorch", "calibration": "percentile"}, "calibration", "MinMaxObserver"),
    ({"convention": "pytorch", "granularity": "group"}, "granularity", "per group"),
    ({"convention": "pytorch", "rounding": "floor"}, "rounding", "half to even"),
    ({"convention": "pytorch", "format": "nf4"}, "format", "NF4"),
    ({"convention": "pytorch", "format": "fp8_e4m3", "granularity": "group"}, "granularity",
     "not reproduced here"),
    ({"convention": "pytorch", "format": "fp8_e5m2", "calibration": "percentile"}, "calibration",
     "amax"),
    ({"convention": "onnxruntime"}, "narrow_range", "[−127, 127]"),
    ({"convention": "onnxruntime", "bits": 4, "narrow_range": True}, "narrow_range",
     "no narrow INT4"),
    ({"convention": "onnxruntime", "bits": 6, "mode": "asymmetric"}, "bits", "4, 8 or 16"),
    ({"convention": "onnxruntime", "calibration": "mse", "narrow_range": True}, "calibration",
     "MSE"),
    ({"convention": "onnxruntime", "calibration": "percentile", "granularity": "channel",
      "narrow_range": True}, "calibration", "per tensor"),
    ({"convention": "tensorrt", "mode": "asymmetric"}, "mode", "symmetrically"),
    ({"convention": "tensorrt", "calibration": "entropy", "granularity": "channel"},
     "calibration", "only supports per tensor"),
    ({"convention": "tensorrt", "format": "fp8_e4m3"}, "format", "FP8 E4M3"),
])
def test_a_setting_the_framework_lacks_is_refused_with_the_reason(settings_, field, words):
    """Refused at the convention's control; the reason names the setting (`field`) it concerns
    and what the framework offers instead."""
    with pytest.raises(QuantcalcError) as caught:
        Config(**settings_)
    assert caught.value.field == "convention"
    assert words in caught.value.message
    exact = Config(**{k: v for k, v in settings_.items() if k != "convention"})
    object.__setattr__(exact, "convention", settings_["convention"])  # past the check
    assert conventions.refusal(exact) == (caught.value.message, field)


def test_exact_is_the_default_and_reports_no_convention():
    x = np.random.default_rng(3).standard_normal((4, 40)).astype(np.float32)
    plain = analyze(x, Config()).summary()
    exact = analyze(x, Config(convention="exact")).summary()
    assert plain == exact and plain["convention"] is None
    framework = analyze(x, Config(convention="tensorrt")).summary()
    assert framework["convention"] == "tensorrt"
    assert framework["notes"][0].startswith("TensorRT (ModelOpt) convention")


def test_values_beyond_float32_are_refused_under_a_framework():
    with pytest.raises(QuantcalcError, match="float32"):
        analyze(np.array([1e300, -1.0]), Config(convention="pytorch"))


@pytest.mark.parametrize("convention, has_blocks", [("pytorch", False), ("onnxruntime", True),
                                                    ("tensorrt", True)])
def test_per_group_is_refused_without_claiming_the_framework_has_no_blocks(convention,
                                                                         has_blocks):
    """ONNX Runtime (MatMulNBits) and ModelOpt (block_sizes) do quantize in blocks, outside the
    calibrators reproduced here: the refusal says so instead of saying they cannot."""
    from quantcalc import api

    reply = api.analyze({"bits": 4, "mode": "symmetric", "granularity": "group",
                         "group_size": 4, "convention": convention},
                        {"text": "1, 2, 3, 4, 5, 6, 7, 8"})
    message = reply["error"]["message"]
    assert "not per group" in message
    assert ("not reproduced here" in message) is has_blocks


def test_the_histogram_runs_where_intp_is_32_bits(monkeypatch):
    """In Pyodide (wasm32) np.bincount casts its input to int32 only 'safely', so int64
    positions raised TypeError there (TensorRT percentile/MSE/entropy in the page); the 32-bit
    rule is emulated here, and the counts checked against numpy's own histogram."""
    from quantcalc.formats.conventions import histc

    x = np.abs(np.random.default_rng(3).standard_normal(5000)).astype(np.float32)
    expected, _ = np.histogram(x, 64, (0, x.max()))
    real = np.bincount

    def bincount_on_wasm32(x, *args, **kwargs):
        return real(np.asarray(x).astype(np.int32, casting="safe"), *args, **kwargs)

    monkeypatch.setattr(np, "bincount", bincount_on_wasm32)
    counts, edges = histc.histogram(x, 64)
    monkeypatch.undo()
    assert counts.sum() == x.size and edges.dtype == np.float32
    assert np.abs(counts - expected).max() <= 2  # only float32 edge roundings may move a value
