"""Integer number formats: signed or unsigned, 2 to 16 bits, optionally narrow range.

The integer grid: which codes exist (`q_min`, `q_max`) for a bit depth, signedness and narrow
range. The scale/zero-point arithmetic lives in `core.py`; the other formats' grids are in
`grids.py` and what each format is, in `registry.py`.
"""

from dataclasses import dataclass

from .errors import QuantcalcError

MIN_BITS = 2
MAX_BITS = 16


@dataclass(frozen=True)
class IntegerFormat:
    """Integers of `bits` bits, signed (two's complement) or unsigned.

    Args:
        bits: 2..16.
        signed: True for [-2^(b-1), 2^(b-1)-1], False for [0, 2^b-1].
        narrow_range: signed only; drop -2^(b-1) so the grid is symmetric (q_min = -q_max), as
            TensorRT and ONNX Runtime do for weights.
    """

    bits: int
    signed: bool = True
    narrow_range: bool = False

    def __post_init__(self):
        if isinstance(self.bits, bool) or not isinstance(self.bits, int):
            raise QuantcalcError(f"bit depth must be a whole number, got {self.bits!r}", "bits")
        if not MIN_BITS <= self.bits <= MAX_BITS:
            raise QuantcalcError(
                f"bit depth must be between {MIN_BITS} and {MAX_BITS}, got {self.bits}", "bits")
        if self.narrow_range and not self.signed:
            raise QuantcalcError("narrow range applies to symmetric (signed) mode only",
                                 "narrow_range")

    @property
    def q_min(self) -> int:
        if not self.signed:
            return 0
        full = -(1 << (self.bits - 1))
        return full + 1 if self.narrow_range else full

    @property
    def q_max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def levels(self) -> int:
        return self.q_max - self.q_min + 1

    @property
    def name(self) -> str:
        return f"int{self.bits}" if self.signed else f"uint{self.bits}"
