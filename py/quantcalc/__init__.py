"""quantcalc: quantization error calculator (library, command line, and the engine of the page).

    >>> import numpy as np
    >>> from quantcalc import Config, analyze
    >>> r = analyze(np.array([-1.25, 0.14, 1.46]), Config(bits=8))
    >>> r.summary()["sqnr_db"] > 40
    True
"""

__version__ = "0.1.0"
__all__ = ["Config", "Result", "QuantcalcError", "analyze", "__version__"]


def __getattr__(name):
    # Imported on first use (PEP 562), so build.py can read the registry, the settings schema
    # and the result fields (plain Python) on a machine without numpy.
    if name in ("Result", "analyze"):
        from quantcalc.engine import analysis
        return getattr(analysis, name)
    if name == "Config":
        from quantcalc.engine.config import Config
        return Config
    if name == "QuantcalcError":
        from quantcalc.errors import QuantcalcError
        return QuantcalcError
    raise AttributeError(f"module 'quantcalc' has no attribute {name!r}")
