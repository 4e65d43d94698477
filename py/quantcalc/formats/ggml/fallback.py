"""The type llama-quantize uses for a tensor whose rows its chosen type's blocks do not divide:
the one place that decides it, for the scan, the planner and llama.cpp's presets.

llama.cpp src/llama-quant.cpp, `tensor_type_fallback` (called for every quantized tensor, after
the preset's rules and after any --tensor-type override, so a pattern does not escape it):

    if (ncols % ggml_blck_size(target_type) != 0) {
        switch (target_type) {
            case IQ1_S: IQ1_M: IQ2_XXS: IQ2_XS: IQ2_S: IQ3_XXS: IQ3_S:
            case IQ4_XS:                      return_type = IQ4_NL; break;
            case Q2_0: Q2_K: Q3_K: TQ1_0: TQ2_0: return_type = Q4_0; break;
            case Q4_K:                        return_type = Q5_0; break;
            case Q5_K:                        return_type = Q5_1; break;
            case Q6_K:                        return_type = Q8_0; break;
            default: throw "no tensor type fallback is defined for type ..."
        }
        if (ncols % ggml_blck_size(return_type) != 0) return_type = F16;  // "unusual shape"
    }

ncols is ne[0], the row length (numpy's last axis). A type of blocks of 32 (Q4_0 … Q8_0,
IQ4_NL) has no fallback: llama-quantize stops on such a tensor.
"""


from quantcalc.formats.ggml.decode import TYPES
from quantcalc.records import record

# ggml type name -> the type llama-quantize takes instead (upper case, as ggml names them)
FALLBACK = {
    **{name: "IQ4_NL" for name in ("IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS",
                                   "IQ3_S", "IQ4_XS")},
    **{name: "Q4_0" for name in ("Q2_0", "Q2_K", "Q3_K", "TQ1_0", "TQ2_0")},
    "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0",
}
BLOCK = {name: values for name, values, _ in TYPES.values()}
SOURCE = "llama.cpp src/llama-quant.cpp tensor_type_fallback"


@record(frozen=True)
class Fallback:
    """What llama-quantize does with a tensor of row length `row_length` asked for `wanted`:
    it writes `used` instead (an upper-case ggml type; "F16" when even the fallback's blocks do
    not divide the rows), or stops (`used` None) when `wanted` has no fallback."""

    wanted: str
    used: str | None
    row_length: int

    @property
    def reason(self) -> str:
        """"row length 384 not a multiple of 256", and what the fallback's own blocks say."""
        text = f"row length {self.row_length} not a multiple of {BLOCK[self.wanted]}"
        if self.used == "F16" and self.wanted in FALLBACK:
            text += f", nor of {FALLBACK[self.wanted]}'s {BLOCK[FALLBACK[self.wanted]]}"
        return text

    @property
    def note(self) -> str:
        """The line a result measured in the fallback type carries."""
        if self.used is None:
            return (f"llama-quantize stops on this tensor under {self.wanted}: {self.reason}, "
                    f"and {self.wanted} has no fallback type")
        return f"fallback {self.used} ({self.reason}): llama-quantize writes {self.used} here"


def block_of(name) -> int | None:
    """Values per block of the ggml type `name` (any case), or None for a type ggml lacks."""
    return BLOCK.get(str(name).upper())


def for_row_length(name, row_length) -> Fallback | None:
    """None when the ggml type `name` (any case) takes rows of `row_length` values (or ggml
    has no such type); else what llama-quantize writes instead (see Fallback)."""
    wanted = str(name).upper()
    block = BLOCK.get(wanted)
    row_length = int(row_length)
    if block is None or row_length % block == 0:
        return None
    used = FALLBACK.get(wanted)
    if used is not None and row_length % BLOCK[used]:
        used = "F16"
    return Fallback(wanted, used, row_length)


def type_for(name, row_length) -> str | None:
    """The type llama-quantize writes for a tensor asked to be `name` (upper case): `name`
    itself, its fallback, "F16", or None where llama-quantize stops."""
    fallback = for_row_length(name, row_length)
    return str(name).upper() if fallback is None else fallback.used
