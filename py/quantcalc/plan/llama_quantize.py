"""A plan as llama-quantize arguments, when llama-quantize can make it.

llama-quantize (llama.cpp's tools/quantize) quantizes a GGUF: `--tensor-type PATTERN=TYPE`
gives the tensors whose name PATTERN finds (std::regex_search; the first pattern that matches
wins) the ggml type TYPE; `--pure` gives every other tensor the base type, instead of the
preset's mixture. So the arguments are: the base (the type most parameters take), one pattern
per tensor of another type (its GGUF name, escaped, anchored at the end), a pattern too for any
tensor that a shorter name's pattern would also find (`output\\.weight$` finds
`blk.0.attn_output.weight`), longest names first; and the whole is checked by applying it as
llama-quantize does (`effective`).

llama-quantize makes only llama.cpp's types: a format is exported only where quantcalc's is
ggml's own (the registry's "ggml" family, bit for bit) and gguf-py names it a ggml type. It
quantizes only what llama.cpp's tensor_allows_quantization lets it (`quantizes`); the others
keep the type convert_hf_to_gguf.py wrote.
"""

import re
import shlex

from quantcalc.schema import gguf_names, registry

# ggml types a plan may keep a tensor in, and llama-quantize writes as they are
PLAIN = ("F32", "F16", "BF16")
# tensor_allows_quantization (llama.cpp src/llama-quant.cpp): names never quantized
NEVER_IN = ("_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel",
            "per_layer_model_proj", "ssm_conv1d", "shortconv.conv.weight",
            "indexer.k_proj.weight", "indexer.q_proj.weight", "attn_rel_b.weight",
            ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos",
            ".patch_embd", ".patch_merger", "a.rvq.codebook", "mm.a.code_embd",
            *(f"time_mix_{part}.weight" for part in (
                "first", "w0", "w1", "w2", "v0", "v1", "v2", "a0", "a1", "a2", "g1", "g2",
                "decay_w1", "decay_w2", "lerp_fused")))
NEVER = ("position_embd.weight", "token_types.weight")  # BERT's, by name
_SPECIAL = re.compile(r"([.^$|?*+()\[\]{}\\/])")
_FILE_NAME = re.compile(r"[^A-Za-z0-9._+-]+")


def ggml_dims(shape) -> int:
    """The tensor's number of dimensions as ggml counts them (ggml_n_dims): a [1, n] tensor
    (numpy's order) is 1-D, since ggml drops its outer dimensions of size 1."""
    dims = len(shape)
    for size in shape:
        if dims <= 1 or size != 1:
            break
        dims -= 1
    return dims


def quantizes(gguf_name, dims) -> bool:
    """Whether llama-quantize quantizes a tensor of this GGUF name and number of dimensions
    (ggml_dims)."""
    return dims >= 2 and gguf_name.endswith("weight") and gguf_name not in NEVER and \
        not any(part in gguf_name for part in NEVER_IN)


def makes(label, formats) -> bool:
    """Whether llama-quantize makes the format `label` (formats: label -> scan format)."""
    if label in PLAIN:
        return True
    settings = (formats.get(label) or {}).get("settings")
    name = settings.get("format") if isinstance(settings, dict) else None
    row = registry.BY_NAME.get(name) if isinstance(name, str) else None
    return row is not None and row.family == "ggml" and label.upper() in gguf_names.GGML_TYPES


def pattern(gguf_name) -> str:
    """The name as a regular expression matching names that end with it (ECMAScript, as
    llama.cpp's std::regex reads it)."""
    return _SPECIAL.sub(r"\\\1", gguf_name) + "$"


def file_name(text) -> str:
    """`text` fit for a file name on a command line: no spaces, nothing a shell reads."""
    return _FILE_NAME.sub("-", str(text)).strip("-") or "model"


def arguments(rows, formats, *, source=None, requantize=False, weighted=False) -> dict:
    """{"made", "reason", "base", "tensor_types", "command", "unmapped", "not_made", "notes"}
    for the plan's rows ({"name", "gguf_name", "shape", "parameters", "format", "kept"})."""
    wanted, unmapped, not_made, counts = {}, [], {}, {}
    for row in rows:
        label, kept = row["format"], row["kept"]
        if row["gguf_name"] is None:
            if not kept:
                unmapped.append(row["name"])
            continue
        if not quantizes(row["gguf_name"], ggml_dims(row["shape"])):
            continue
        if kept and label not in gguf_names.GGML_TYPES:
            continue  # not floats (I64): convert does not write it as a weight
        if not kept and not makes(label, formats):
            not_made.setdefault(label, []).append(row["name"])
            continue
        wanted[row["gguf_name"]] = label
        if not kept:
            counts[label] = counts.get(label, 0) + row["parameters"]
    out = {"made": False, "reason": None, "base": None, "tensor_types": [], "command": "",
           "unmapped": unmapped, "not_made": [{"format": label, "tensors": len(names)}
                                               for label, names in not_made.items()],
           "notes": []}
    if not_made:
        out["reason"] = "llama-quantize makes only llama.cpp's types; this plan also uses " + \
            ", ".join(f"{label} ({len(names)} tensor{'s' * (len(names) != 1)})"
                      for label, names in not_made.items())
        return out
    if not counts:  # nothing for llama-quantize to do: no base, no overrides
        out.update(made=True, notes=["no tensor of the plan is one llama-quantize quantizes"])
        return out
    base = max(counts, key=counts.get)
    lines = overrides(wanted, base)
    if effective(lines, base, wanted) != wanted:  # never: overrides() is built to make it so
        raise AssertionError("the --tensor-type patterns do not give the planned types")
    out.update(made=True, base=base, tensor_types=[f"{p}={t.lower()}" for p, t in lines])
    out["command"] = command(out["tensor_types"], base, source, requantize)
    if weighted:
        out["notes"].append("the scan searched with an importance matrix: give llama-quantize "
                            "the same file (--imatrix FILE) to make what was measured")
    if unmapped:
        out["notes"].append(f"{len(unmapped)} planned tensor(s) are not in the GGUF that "
                            f"convert_hf_to_gguf.py writes (no GGUF name), e.g. {unmapped[0]}")
    return out


def overrides(wanted, base) -> list:
    """[(pattern, type)]: a pattern for each tensor not of the base type, and for each tensor
    another pattern would find; longest names first, so each tensor's own pattern comes first."""
    own = {name for name, kind in wanted.items() if kind != base}
    while True:
        caught = {other for other in wanted if other not in own
                  and any(other != name and other.endswith(name) for name in own)}
        if not caught:
            break
        own |= caught
    order = {name: i for i, name in enumerate(wanted)}
    return [(pattern(name), wanted[name])
            for name in sorted(own, key=lambda n: (-len(n), order[n]))]


def effective(lines, base, names) -> dict:
    """{name: type} as llama-quantize applies `lines` ([(pattern, type)]) and the base to the
    names: the first pattern that std::regex_search finds wins."""
    compiled = [(re.compile(p), kind) for p, kind in lines]
    return {name: next((kind for regex, kind in compiled if regex.search(name)), base)
            for name in names}


def command(tensor_types, base, source=None, requantize=False) -> str:
    """The llama-quantize command line: `source` is the scanned GGUF's file name (None: the
    GGUF convert_hf_to_gguf.py writes from a safetensors checkpoint)."""
    given = source if source and source.lower().endswith(".gguf") else None
    stem = file_name(given[:-5]) if given else "model"
    parts = ["llama-quantize"] + [f"--tensor-type {shlex.quote(line)}" for line in tensor_types]
    parts += ["--allow-requantize"] if requantize else []
    parts += ["--pure", shlex.quote(given or "model-f16.gguf"),
              f"{stem}-{file_name(base)}-plan.gguf", base]
    return " ".join(parts)
