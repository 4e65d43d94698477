"""The pipeline's named steps as a streamed scan uses them: fit_parameters per slab, then one
QuantizeJob per slab adding to accumulators shared across slabs."""

import numpy as np
import pytest

from quantcalc import Config, analyze
from quantcalc.engine.analysis import QuantizeJob, fit_parameters, quantize_into
from quantcalc.engine.metrics import ErrorAccumulator
from quantcalc.formats.schemes import scheme_for


@pytest.mark.parametrize("settings", [{"bits": 4, "granularity": "channel", "axis": 0},
                                      {"format": "mxfp4"}, {"format": "q4_0"}])
def test_a_job_per_slab_with_shared_accumulators_equals_one_analysis(settings):
    x = np.random.default_rng(3).standard_normal((8, 64)).astype(np.float32)
    config = Config(**settings)  # each slab's rows own their scales: per row, or per block
    whole = analyze(x, config, keep=0)
    errors = ErrorAccumulator(float(np.abs(x).max()))
    for slab in (x[:4], x[4:]):
        scheme = scheme_for(config)
        segmentation = scheme.segmentation(slab.shape, config)
        data_range = (np.empty(segmentation.count), np.empty(segmentation.count)) \
            if scheme.measures_range else segmentation.min_max(slab)
        _, _, params = fit_parameters(slab, scheme, segmentation, config, data_range)
        quantize_into(slab.reshape(-1), QuantizeJob(
            scheme=scheme, params=params, segmentation=segmentation, rounding=config.rounding,
            rng=None, errors=errors))
    got = errors.finish()
    assert got["count"] == whole.metrics["count"]
    assert got["clip_count"] == whole.metrics["clip_count"]
    assert got["max_abs_error"] == whole.metrics["max_abs_error"]
    assert got["mse"] == pytest.approx(whole.metrics["mse"], rel=1e-12)


def test_a_job_is_frozen():
    scheme = scheme_for(Config())
    job = QuantizeJob(scheme=scheme, params=None, segmentation=None, rounding="half-even",
                      rng=None, errors=ErrorAccumulator())
    with pytest.raises(AttributeError):
        job.rounding = "floor"
