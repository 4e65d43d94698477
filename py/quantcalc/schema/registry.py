"""The format registry: every number format a tensor can be quantized to, declared once.

A row says what the format *is* (element kind and bits, blocks, how scales are stored) and which
settings a user may change for it. Everything else reads these rows: the schemes take their facts
from them (formats/schemes/), the settings schema decides from them which controls apply
(schema/settings.py), the page gets a generated copy (build.py writes it), the command line
builds `--format` from them, and the reports describe a result with them. Adding a format is one
row here plus, when no existing family fits, one scheme class (formats/schemes/).

Plain Python with no numpy, so build.py can read it without the engine's dependencies.
"""

from dataclasses import field

from quantcalc.records import record

# Settings a format may let the user change (the rest of the settings schema applies to all).
FORMAT_SETTINGS = ("bits", "mode", "narrow_range", "rounding", "calibration", "granularity",
                   "block_size")
ALL_CALIBRATIONS = ("minmax", "percentile", "mse", "entropy", "custom")
RANGE_CALIBRATIONS = ("minmax", "percentile", "mse", "custom")  # entropy is integer-only (TensorRT)


@record(frozen=True)
class Format:
    """One number format.

    Args:
        name: the value of the `format` setting ("fp8_e4m3").
        label: how people write it ("FP8 E4M3").
        menu: the group it is listed under in the page's format menu.
        family: which scheme class implements it (schemes.FAMILIES).
        element: what a code is: "int" (an integer on a uniform grid), "float" (a small float's
            bit pattern) or "codebook" (an index into a table of levels).
        element_bits: bits per element; None when the `bits` setting decides (integers).
        grid: the element grid's name (grids.FLOAT_GRIDS, "nf4"), if any.
        block_size: values per block along the last axis, for block formats; None otherwise.
        block_size_fixed: True when the block size is part of the format's definition.
        scale_format: how a scale is stored ("float32", "E8M0", "fp16", "FP8 E4M3").
        scale_bits: storage bits per scale (per block, or per segment).
        tensor_scale_bits: a second-level scale per tensor (NVFP4's FP32), 0 if none.
        settings: which of FORMAT_SETTINGS the user may change for this format.
        calibrations: the range sources this format accepts.
        fixed: what a setting the user cannot change is for this format ({"mode": "symmetric"}),
            reported in results and shown beside the disabled control.
        rule: one line on how the format rounds and scales, shown as a note on its results and
            beside controls it fixes.
        super_block: values per super-block (K-quants: 256); a row's length must be a multiple.
        uses_importance: an importance matrix changes its search (ggml's quantize_*_impl).
        code_offset: the integer zero point of codes, x̂ = d·(q − offset), for formats that have
            one (None where a real-valued min takes its place, as in Q4_1 and Q4_K).
        tile: blocks are square tiles (block_size × block_size) of the matrix, not runs along
            the last axis.
        reference: where its arithmetic comes from.
    """

    name: str
    label: str
    menu: str
    family: str
    element: str
    element_bits: int | None
    grid: str | None = None
    block_size: int | None = None
    block_size_fixed: bool = True
    scale_format: str = "float32"
    scale_bits: int = 32
    tensor_scale_bits: int = 0
    settings: frozenset = field(default_factory=frozenset)
    calibrations: tuple = ("minmax",)
    fixed: dict = field(default_factory=dict)
    rule: str = ""
    reference: str = ""
    super_block: int | None = None
    uses_importance: bool = False
    code_offset: int | None = None
    tile: bool = False

    def applies(self, setting: str) -> bool:
        """Whether the user may change `setting` for this format."""
        return setting not in FORMAT_SETTINGS or setting in self.settings

    def to_dict(self) -> dict:
        """The row as JSON for the page."""
        return {"name": self.name, "label": self.label, "menu": self.menu,
                "element": self.element, "element_bits": self.element_bits,
                "block_size": self.block_size, "block_size_fixed": self.block_size_fixed,
                "scale_format": self.scale_format, "settings": sorted(self.settings),
                "calibrations": list(self.calibrations), "fixed": dict(self.fixed),
                "rule": self.rule, "super_block": self.super_block,
                "uses_importance": self.uses_importance}


def _scaled_float(name, *, label, bits):
    return Format(
        name=name, label=label, menu="Floating point, scaled", family="float", element="float",
        element_bits=bits, grid=name,
        settings=frozenset({"rounding", "calibration", "granularity"}),
        calibrations=RANGE_CALIBRATIONS, fixed={"mode": "symmetric"},
        rule="a float32 scale maps the range's largest magnitude onto the format's largest "
             "value; elements saturate there instead of becoming Inf/NaN",
        reference="OCP 8-bit floating point (E4M3FN, E5M2), OCP MX v1.0 element types")


def _mx(name, *, label, bits, grid):
    """grid: the element grid's name, or None for MXINT8's integers."""
    return Format(
        name=name, label=label, menu="Block formats (MX, OCP v1.0)", family="mx",
        element="int" if grid is None else "float", element_bits=bits, grid=grid,
        block_size=32, scale_format="E8M0", scale_bits=8,
        settings=frozenset({"rounding"}), fixed={"mode": "symmetric", "calibration": "minmax"},
        rule="each block of 32 shares a power-of-two (E8M0) scale 2^(floor(log2 amax) - emax)",
        reference="OCP Microscaling Formats (MX) v1.0")


FORMATS = (
    Format(name="int", label="Integer (INT2–INT16)", menu="Integer", family="int",
           element="int", element_bits=None,
           settings=frozenset({"bits", "mode", "narrow_range", "rounding", "calibration",
                               "granularity"}),
           calibrations=ALL_CALIBRATIONS,
           rule="",  # the formulas the page and the README explain; no note on each result
           reference="PyTorch / ONNX Runtime / TensorRT integer quantization"),
    _scaled_float("fp8_e4m3", label="FP8 E4M3", bits=8),
    _scaled_float("fp8_e5m2", label="FP8 E5M2", bits=8),
    _scaled_float("fp6_e2m3", label="FP6 E2M3", bits=6),
    _scaled_float("fp6_e3m2", label="FP6 E3M2", bits=6),
    _scaled_float("fp4_e2m1", label="FP4 E2M1", bits=4),
    Format(name="fp8_b128", label="FP8 E4M3, 1×128 blocks (DeepSeek)",
           menu="Floating point, scaled", family="blockfp8", element="float", element_bits=8,
           grid="fp8_e4m3", block_size=128,
           fixed={"mode": "symmetric", "calibration": "minmax"},
           rule="blocks of 128 along each row, as DeepSeek-V3 quantizes activations: "
                "s = amax / 448 in float32, x̂ = fp8(x / s) · s",
           reference="DeepSeek-V3 inference/kernel.py act_quant"),
    Format(name="fp8_t128", label="FP8 E4M3, 128×128 tiles (DeepSeek)",
           menu="Floating point, scaled", family="blockfp8", element="float", element_bits=8,
           grid="fp8_e4m3", block_size=128, tile=True,
           fixed={"mode": "symmetric", "calibration": "minmax"},
           rule="tiles of 128 × 128, as DeepSeek-V3 checkpoints store their weights: "
                "s = amax / 448 in float32 (weight_scale_inv), x̂ = fp8(x / s) · s",
           reference="DeepSeek-V3 inference/kernel.py weight_quant / weight_dequant"),
    Format(name="nf4", label="NF4", menu="Block formats", family="nf4", element="codebook",
           element_bits=4, grid="nf4", block_size=64,
           block_size_fixed=False, settings=frozenset({"block_size"}),
           fixed={"mode": "symmetric", "calibration": "minmax"},
           rule="each block is divided by its largest magnitude (absmax) and every value takes "
                "the nearest of 16 NormalFloat levels",
           reference="QLoRA (Dettmers et al. 2023), bitsandbytes"),
    _mx("mxfp8_e4m3", label="MXFP8 E4M3", bits=8, grid="fp8_e4m3"),
    _mx("mxfp8_e5m2", label="MXFP8 E5M2", bits=8, grid="fp8_e5m2"),
    _mx("mxfp6_e2m3", label="MXFP6 E2M3", bits=6, grid="fp6_e2m3"),
    _mx("mxfp6_e3m2", label="MXFP6 E3M2", bits=6, grid="fp6_e3m2"),
    _mx("mxfp4", label="MXFP4", bits=4, grid="fp4_e2m1"),
    _mx("mxint8", label="MXINT8", bits=8, grid=None),
    Format(name="nvfp4", label="NVFP4", menu="Block formats", family="nvfp4", element="float",
           element_bits=4, grid="fp4_e2m1",
           block_size=16, scale_format="FP8 E4M3 × FP32 per tensor", scale_bits=8,
           tensor_scale_bits=32, settings=frozenset({"rounding"}),
           fixed={"mode": "symmetric", "calibration": "minmax"},
           rule="FP4 E2M1 elements in blocks of 16; each block's FP8 E4M3 scale is multiplied by "
                "one FP32 scale amax / (6 × 448) for the tensor",
           reference="NVIDIA NVFP4 (Blackwell)"),
)


def _ggml(name, *, bits, block, mode, scale_bits, rule, super_block=None, scale_format="fp16",
          uses_importance=True, code_offset=None, element="int"):
    """A llama.cpp type. block: values per block (K-quants: per sub-block); mode: what the page
    shows for it; scale_bits: see below."""
    ggml_name = name.replace("_k", "_K")
    return Format(
        name=name, label=f"GGUF {ggml_name.upper()}", menu="Block formats (llama.cpp)",
        family="ggml", element=element, element_bits=bits, block_size=block,
        super_block=super_block, scale_format=scale_format, scale_bits=scale_bits,
        fixed={"mode": mode, "calibration": "minmax"},
        uses_importance=uses_importance, code_offset=code_offset, rule=rule,
        reference=f"llama.cpp ggml-quants.c quantize_row_{ggml_name}_ref"
                  + (f"; quantize_row_{ggml_name}_impl with an importance matrix"
                     if uses_importance else ""))


_SCALE_MIN = ("each sub-block's scale and min come from ggml's weighted search and are quantized "
              "against fp16 super-block scales d and dmin; x̂ = d·sc·q − dmin·m")
# scale_bits: per (sub-)block, its own scale fields plus its share of the super-block's fp16
# scales (Q4_K: 6 + 6 bits per 32, and 2 x 16 bits per 8 sub-blocks: 16 bits per 32 values).
FORMATS += (
    _ggml("q8_0", bits=8, block=32, mode="symmetric", scale_bits=16,
          rule="blocks of 32: d = amax / 127 stored as fp16, q = round(x / d) in float32",
          uses_importance=False, code_offset=0),
    _ggml("q4_0", bits=4, block=32, mode="symmetric", scale_bits=16,
          rule="blocks of 32: d = (the block's largest-magnitude value, sign kept) / -8 stored "
               "as fp16, q = min(15, trunc(x / d + 8.5)), x̂ = (q - 8) d; a negative d means "
               "that value was positive", code_offset=8),
    _ggml("q4_1", bits=4, block=32, mode="asymmetric", scale_bits=32,
          rule="blocks of 32: d = (max - min) / 15 and m = min stored as fp16, x̂ = q d + m"),
    _ggml("q5_0", bits=5, block=32, mode="symmetric", scale_bits=16,
          rule="blocks of 32: d = (the largest-magnitude value) / -16 as fp16, x̂ = (q - 16) d",
          code_offset=16),
    _ggml("q5_1", bits=5, block=32, mode="asymmetric", scale_bits=32,
          rule="blocks of 32: d = (max - min) / 31 and m = min stored as fp16, x̂ = q d + m"),
    _ggml("q2_k", bits=2, block=16, mode="asymmetric", scale_bits=10,
          rule="super-blocks of 256 in sub-blocks of 16 with 4-bit scales and mins: "
               + _SCALE_MIN, super_block=256, scale_format="4-bit × fp16"),
    _ggml("q3_k", bits=3, block=16, mode="symmetric", scale_bits=7,
          rule="super-blocks of 256 in sub-blocks of 16 with signed 6-bit scales against an "
               "fp16 d; x̂ = d·(sc − 32)·(q − 4)", super_block=256,
          scale_format="6-bit × fp16", code_offset=4),
    _ggml("q4_k", bits=4, block=32, mode="asymmetric", scale_bits=16,
          rule="super-blocks of 256 in sub-blocks of 32 with 6-bit scales and mins: "
               + _SCALE_MIN, super_block=256, scale_format="6-bit × fp16"),
    _ggml("q5_k", bits=5, block=32, mode="asymmetric", scale_bits=16,
          rule="super-blocks of 256 in sub-blocks of 32 with 6-bit scales and mins: "
               + _SCALE_MIN, super_block=256, scale_format="6-bit × fp16"),
    _ggml("iq4_nl", bits=4, block=32, mode="symmetric", scale_bits=16,
          rule="blocks of 32, each value the nearest of 16 non-uniform levels (-127 … 113) "
               "times an fp16 scale found by a weighted search", element="codebook"),
    _ggml("iq4_xs", bits=4, block=32, mode="symmetric", scale_bits=8,
          rule="super-blocks of 256 in sub-blocks of 32 with signed 6-bit scales against an "
               "fp16 d; each value the nearest of IQ4_NL's 16 levels", super_block=256,
          scale_format="6-bit × fp16", element="codebook"),
    _ggml("q6_k", bits=6, block=16, mode="symmetric", scale_bits=9,
          rule="super-blocks of 256 in sub-blocks of 16 with int8 scales against an fp16 d; "
               "x̂ = d·sc·(q − 32)", super_block=256,
          scale_format="8-bit × fp16", code_offset=32),
)

BY_NAME = {f.name: f for f in FORMATS}
NAMES = tuple(BY_NAME)


def get(name: str) -> Format:
    """The row of `name`; KeyError if there is none (schema/settings.py turns it into a message)."""
    return BY_NAME[name]


def add(fmt: Format):
    """Register one more format (a plug-in, or a test's throwaway row)."""
    global FORMATS, NAMES
    if fmt.name in BY_NAME:
        raise ValueError(f"format {fmt.name!r} is already registered")
    FORMATS = FORMATS + (fmt,)
    BY_NAME[fmt.name] = fmt
    NAMES = tuple(BY_NAME)


def remove(name: str):
    global FORMATS, NAMES
    del BY_NAME[name]
    FORMATS = tuple(f for f in FORMATS if f.name != name)
    NAMES = tuple(BY_NAME)
