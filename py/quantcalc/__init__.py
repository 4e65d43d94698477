"""quantcalc: quantization error calculator (library, command line, and the engine of the page).

    >>> import numpy as np
    >>> from quantcalc import Config, analyze
    >>> r = analyze(np.array([-1.25, 0.14, 1.46]), Config(bits=8))
    >>> r.summary()["sqnr_db"] > 40
    True
"""

__version__ = "0.1.0"

from .analysis import Result, analyze  # noqa: E402
from .config import Config  # noqa: E402
from .errors import QuantcalcError  # noqa: E402

__all__ = ["Config", "Result", "QuantcalcError", "analyze", "__version__"]
