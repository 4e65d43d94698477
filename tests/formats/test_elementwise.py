"""formats/elementwise: the page-fast forms give numpy's own results bit for bit."""

import numpy as np
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from quantcalc.formats.elementwise import above_to, below_or_nan_to, magnitude

SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 5e-324, -5e-324, 1e-45, -1e-45, 3.4e38,
           -3.4e38, 1.7e308, -1.7e308]


def floats(dtype):
    return hnp.arrays(dtype, hnp.array_shapes(min_dims=1, max_dims=3, max_side=9),
                      elements=st.floats(width=np.dtype(dtype).itemsize * 8, allow_nan=True,
                                         allow_subnormal=True))


@given(st.one_of(floats(np.float32), floats(np.float64)))
def test_magnitude_is_numpy_abs_bit_for_bit(values):
    assert magnitude(values).tobytes() == np.abs(values).tobytes()
    out = np.empty_like(values)
    assert magnitude(values, out=out) is out
    assert out.tobytes() == np.abs(values).tobytes()


def test_magnitude_of_special_values_and_strided_and_other_dtypes():
    for dtype in (np.float32, np.float64):
        with np.errstate(over="ignore"):
            values = np.array(SPECIAL, dtype)
        assert magnitude(values).tobytes() == np.abs(values).tobytes()
        assert magnitude(values[::2]).tobytes() == np.abs(values[::2]).tobytes()
        assert np.signbit(magnitude(values)).sum() == 0  # -0 and -NaN lose their sign too
    integers = np.array([-3, 0, 7], np.int32)
    assert magnitude(integers).tolist() == [3, 0, 7]


@given(floats(np.float32), st.floats(-200, 200, width=32), st.floats(-200, 200, width=32))
def test_the_clamps_are_fmin_and_fmax(values, a, b):
    low, high = np.float32(min(a, b)), np.float32(max(a, b))
    clamped = above_to(below_or_nan_to(values, high), low)
    assert clamped.tobytes() == np.fmax(np.fmin(values, high), low).tobytes()
