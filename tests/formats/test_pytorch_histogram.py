"""PyTorch's HistogramObserver (calibration=mse under the pytorch convention) against torch's
own observer: its pieces (torch.histc, torch.sum's cascade order, _compute_quantization_error)
bit for bit, the searched range, and the codes, scales and zero points through analyze, on
hypothesis tensors (normal, heavy-tailed, one-sided, ties, 1e-6 and 1e30 magnitudes, constants)
and on real MiniLM weights."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantcalc.engine.analysis import analyze
from quantcalc.engine.config import Config
from quantcalc.errors import QuantcalcError
from quantcalc.formats.conventions import histogram_observer as ho
from quantcalc.formats.conventions.histc import histc
from tests.support.convention_cases import CASES, compare, name

torch = pytest.importorskip("torch")
from torch.ao.quantization.observer import HistogramObserver  # noqa: E402

MSE_CASES = [c for c in CASES["pytorch"] if c.get("calibration") == "mse"]


def _observed(x):
    """torch's HistogramObserver after one forward(x)."""
    observer = HistogramObserver()
    observer(torch.from_numpy(np.ascontiguousarray(x)))
    return observer


@st.composite
def tensors(draw):
    shape = (draw(st.integers(1, 6)), draw(st.integers(1, 300)))
    kind = draw(st.sampled_from(["normal", "heavy", "one-sided", "ties", "constant"]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    if kind == "ties":  # few distinct values: whole bins jump the cumulative sum at once
        x = rng.integers(-40, 41, shape) / 4.0
    elif kind == "constant":
        x = np.full(shape, rng.standard_normal())
    else:
        x = rng.standard_normal(shape) if kind == "normal" else rng.standard_t(1.5, shape)
        if kind == "one-sided":
            x = np.abs(x) * draw(st.sampled_from([1, -1])) + draw(st.sampled_from([0.0, 3.0]))
    x = x * draw(st.sampled_from([1e-6, 1e-3, 1.0, 1e3, 1e30]))
    return x.astype(np.float32)


def _identical(a, b):
    return (a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == "f" else a == b


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=tensors())
def test_the_searched_range_is_torchs(x):
    observer = _observed(x)
    if x.min() != x.max() or abs(x.min()) < 2 ** 23:  # a constant's ±1 widening must fit
        assert (histc(x, 2048, x.min(), x.max()) == observer.histogram.numpy()).all()
    theirs = [np.float32(v.item()) for v in observer._non_linear_param_search()]
    ours = ho.observe(x)
    assert ours[0] == theirs[0] and ours[1] == theirs[1], (ours, theirs)
    assert np.signbit(ours[0]) == np.signbit(theirs[0])


@pytest.mark.parametrize("case", MSE_CASES, ids=name)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=tensors())
def test_codes_scales_zero_points_are_torchs(case, x):
    ours, theirs = compare(x, case)
    for what, a, b in zip(("codes", "scale", "zero point", "reconstruction"), ours, theirs):
        assert a.shape == b.shape, (what, a.shape, b.shape)
        same = _identical(a, b)
        assert same.all(), (f"{what} differ at {np.flatnonzero(~same)[:5]}: "
                            f"ours {a[~same][:3]}, theirs {b[~same][:3]}")


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 9000), seed=st.integers(0, 2 ** 32 - 1),
       scale=st.sampled_from([1e-30, 1.0, 1e30]))
def test_cascade_sum_adds_in_torchs_order(n, seed, scale):
    """torch.sum of a float32 vector: the same float32 to the last bit (a plain numpy sum, a
    pairwise sum of blocks of 8, differs on about one vector in ten of these)."""
    v = (np.random.default_rng(seed).standard_normal(n) * scale).astype(np.float32)
    assert ho.cascade_sum(v) == torch.from_numpy(v).sum().item()


def test_the_cumulative_sum_rounds_as_torchs():
    """torch.cumsum adds in float64 and rounds each entry: 2^24 + 1 + 1 is 2^24 + 2, where a
    float32 running sum would stay at 2^24."""
    counts = np.array([2.0 ** 24, 1, 1, 3, 2.0 ** 25, 1], np.float32)
    assert (ho.cumulative(counts) == torch.cumsum(torch.from_numpy(counts), 0).numpy()).all()
    assert ho.cumulative(counts)[2] == 2 ** 24 + 2


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=tensors(), picks=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1,
                                  max_size=8))
def test_the_error_of_any_candidate_is_torchs(x, picks):
    """_compute_quantization_error(start, end) for arbitrary bins, NaN and inf (1e30's cubes
    overflow) included."""
    observer = _observed(x)
    hist = observer.histogram.numpy()
    bin_width = (observer.max_val.item() - observer.min_val.item()) / 2048
    for a, b in picks:
        start = int(a * 2047)
        end = start + int(b * (2047 - start))
        theirs = observer._compute_quantization_error(start, end)
        ours = ho.quantization_error(hist, bin_width, start, end, 256, ho.VECTOR_WIDTH)
        assert ours == theirs or (np.isnan(ours) and np.isnan(theirs)), (start, end)


def test_the_search_moves_off_min_max_on_a_long_tail():
    """Not a min-max in disguise: on heavy tails the observer clips (and so do we)."""
    x = np.random.default_rng(7).standard_t(1.5, 5000).astype(np.float32)
    lo, hi = ho.observe(x)
    assert x.min() <= lo < hi <= x.max() and (lo, hi) != (x.min(), x.max())
    theirs = _observed(x)._non_linear_param_search()
    assert (lo, hi) == tuple(np.float32(v.item()) for v in theirs)


def test_a_range_whose_histogram_overflows_is_refused():
    x = np.array([-1e36, 1e36, 1.0], np.float32)
    with pytest.raises(QuantcalcError, match="overflows float32") as caught:
        analyze(x, Config(convention="pytorch", calibration="mse", mode="asymmetric"))
    assert caught.value.field == "values"


@pytest.mark.parametrize("settings_, field, words", [
    ({"calibration": "mse", "granularity": "channel"}, "calibration", "per_tensor"),
    ({"calibration": "mse", "bits": 12, "mode": "asymmetric"}, "bits", "256 levels"),
    ({"calibration": "percentile"}, "calibration", "no percentile observer"),
    ({"calibration": "entropy"}, "calibration", "no entropy observer"),
])
def test_what_histogramobserver_lacks_is_refused(settings_, field, words):
    with pytest.raises(QuantcalcError) as caught:
        Config(convention="pytorch", **settings_)
    assert caught.value.field == "convention" and words in caught.value.message


def test_the_result_says_histogramobserver_chose_the_range():
    x = np.random.default_rng(1).standard_normal(500).astype(np.float32)
    notes = analyze(x, Config(convention="pytorch", calibration="mse")).summary()["notes"]
    assert "HistogramObserver" in notes[0]


@pytest.mark.slow
def test_minilm_weights_identical():
    """Two real all-MiniLM-L6-v2 weights (one with a 44× outlier the search clips), every
    HistogramObserver setting."""
    from quantcalc.readers import checkpoint
    from tests.support import corpus
    path = str(corpus.file_or_skip("minilm-safetensors"))
    for tensor in ("encoder.layer.0.intermediate.dense.weight",
                   "encoder.layer.0.output.dense.weight"):
        x = checkpoint.read_tensor(path, tensor)
        lo, hi = ho.observe(x)
        assert x.min() < lo and hi < x.max()  # the search clipped both ends (checked)
        for case in MSE_CASES:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ours, theirs = compare(x, case)
            for a, b in zip(ours, theirs):
                assert _identical(a, b).all(), (tensor, name(case))
