"""A plan as an llm-compressor recipe, for the formats compressed-tensors has a scheme for.

llm-compressor's QuantizationModifier takes `config_groups`: each group quantizes the weights of
the modules its `targets` name with one compressed-tensors QuantizationArgs (num_bits, type int
or float, strategy, group_size, symmetric). The formats it makes, as quantcalc measures them:

    int 4 or 8 bits, per tensor / per output channel / per group   strategy tensor/channel/group
    FP8 E4M3 per tensor or per output channel                      type float, 8 bits
    FP8 E4M3 in 128 x 128 tiles (DeepSeek-V3's weights)             strategy block
    NVFP4 (blocks of 16, FP8 E4M3 scales x FP32)                    compressed-tensors' NVFP4A16
    MXFP4 (blocks of 32, E8M0 scales)                               compressed-tensors' MXFP4A16

Any other format (FP6, FP4 without block scales, MXFP6/MXFP8/MXINT8, NF4, FP8 E5M2) has no
scheme there, and llama.cpp's types are llama-quantize's: those are listed as not made.
Targets are module names: the checkpoint's tensor names without ".weight" (a GGUF's names are
not a Hugging Face model's modules, so a GGUF gets no recipe).
"""

import json

from quantcalc.engine.config import Config
from quantcalc.errors import QuantcalcError

FLOAT, INT = "float", "int"
LLAMA_CPP = "a llama.cpp type"


class NotMade(Exception):
    """Why compressed-tensors has no scheme for a format."""


def weights(settings) -> tuple:
    """(compressed-tensors weights arguments, notes) for a scan format's settings; raises
    NotMade with the reason when there is no such scheme."""
    try:
        config = Config.from_dict(dict(settings))
    except (QuantcalcError, TypeError):
        raise NotMade("the scan does not say how it was set") from None
    notes = []
    if config.format == "int":
        args = _integer(config)
    elif config.format == "fp8_e4m3":
        args = {"num_bits": 8, "type": FLOAT, **_strategy(config, group=False),
                "symmetric": True, "dynamic": False}
    elif config.format == "fp8_t128":
        args = {"num_bits": 8, "type": FLOAT, "strategy": "block", "block_structure": [128, 128],
                "symmetric": True, "dynamic": False}
    elif config.format == "nvfp4":
        args = {"num_bits": 4, "type": FLOAT, "strategy": "tensor_group", "group_size": 16,
                "symmetric": True, "dynamic": False, "scale_dtype": "torch.float8_e4m3fn"}
    elif config.format == "mxfp4":
        args = {"num_bits": 4, "type": FLOAT, "strategy": "group", "group_size": 32,
                "symmetric": True, "dynamic": False, "scale_dtype": "torch.uint8",
                "zp_dtype": "torch.uint8"}
    elif config.format_row.family == "ggml":
        raise NotMade(f"{LLAMA_CPP}: llama-quantize makes it, llm-compressor does not")
    else:
        raise NotMade("compressed-tensors has no scheme for it; no tool quantcalc knows makes it")
    if config.effective("calibration") == "mse":
        args["observer"] = "mse"
    elif config.effective("calibration") not in (None, "minmax"):
        notes.append(f"measured with {config.calibration} calibration; llm-compressor's "
                     f"observer here is min-max")
    if config.effective("rounding") not in (None, "half-even"):
        notes.append(f"measured with {config.rounding} rounding; compressed-tensors rounds "
                     f"half to even")
    return args, notes


def has_scheme(fmt) -> bool:
    """Whether compressed-tensors has a scheme for the scan format `fmt` ({"label",
    "settings"})."""
    try:
        weights((fmt or {}).get("settings") or {})
    except NotMade:
        return False
    return True


def _integer(config) -> dict:
    if config.bits not in (4, 8):
        raise NotMade(f"compressed-tensors' integer schemes are 4 and 8 bits, not {config.bits}")
    if config.narrow_range:
        raise NotMade("compressed-tensors' integers use the full range, not a narrow one")
    return {"num_bits": config.bits, "type": INT, **_strategy(config, group=True),
            "symmetric": config.mode == "symmetric", "dynamic": False}


def _strategy(config, group) -> dict:
    if config.granularity == "tensor":
        return {"strategy": "tensor"}
    if config.granularity == "channel" and config.axis == 0:
        return {"strategy": "channel"}
    if config.granularity == "group" and group:
        return {"strategy": "group", "group_size": config.group_size}
    raise NotMade(f"compressed-tensors quantizes {config.format.upper()} weights per tensor, "
                  f"per output channel (axis 0)" + (" or per group" if group else "") +
                  f", not per {config.granularity}"
                  + (f" along axis {config.axis}" if config.granularity == "channel" else ""))


def recipe(rows, formats, *, gguf_source=False) -> dict:
    """{"made", "reason", "groups": [{"format", "targets", "weights", "notes"}], "not_made":
    [{"format", "tensors", "reason"}]} for the plan's rows (the tensors kept are not touched)."""
    groups, not_made, order = {}, {}, []
    for row in rows:
        if row["kept"]:
            continue
        label = row["format"]
        if label not in groups and label not in not_made:
            try:
                args, notes = weights((formats.get(label) or {}).get("settings") or {})
                groups[label] = {"format": label, "targets": [], "weights": args,
                                 "notes": notes}
                order.append(label)
            except NotMade as exc:
                not_made[label] = {"format": label, "tensors": 0, "reason": str(exc)}
        if label in not_made:
            not_made[label]["tensors"] += 1
        elif not row["name"].endswith(".weight"):
            entry = not_made.setdefault(f"{label} (not a module's weight)", {
                "format": label, "tensors": 0,
                "reason": "llm-compressor quantizes a module's weight; this tensor is not one"})
            entry["tensors"] += 1
        else:  # a stack of experts (plan/experts.py) targets each expert's module
            groups[label]["targets"] += [name[:-len(".weight")] for name in
                                         row.get("experts") or [row["name"]]]
    made = [groups[label] for label in order if groups[label]["targets"]]
    out = {"made": bool(made), "groups": made, "not_made": list(not_made.values()),
           "reason": None}
    if gguf_source:
        out["reason"] = "the scan is of a GGUF file: llm-compressor takes the Hugging Face " \
                        "checkpoint, whose module names a GGUF does not keep"
        out.update(made=False, groups=[])
    elif not made and not_made and all(item["reason"].startswith(LLAMA_CPP)
                                       for item in not_made.values()):
        out["reason"] = "the plan uses only llama.cpp's types, which llama-quantize makes"
    elif not made:
        out["reason"] = "no planned format has a compressed-tensors scheme" if not_made else \
            "the plan quantizes no tensor"
    return out


def recipe_text(plan) -> str:
    """The recipe as llm-compressor reads it (YAML; every string written as a JSON string,
    which YAML reads as it is)."""
    section = plan.get("compressed_tensors") or {
        "made": False, "not_made": [], "reason": "the plan has no recipe section (an earlier "
        "quantcalc made it): plan it again"}
    lines = [f"# llm-compressor recipe of a quantcalc plan: {plan['bits_per_weight']:.4f} bits "
             f"per weight, total error {plan['total_error']:.6g} ({plan['metric']}).",
             "# Each config group quantizes the weights of the modules it targets; the others "
             "stay as they are."]
    for item in section["not_made"]:
        lines.append(f"# not in this recipe: {item['format']} ({_tensors(item['tensors'])}): "
                     f"{item['reason']}")
    if not section["made"]:
        lines.append(f"# llm-compressor cannot make this plan: {section['reason']}")
        return "\n".join(lines) + "\n"
    lines += ["quant_stage:", "  quant_modifiers:", "    QuantizationModifier:",
              "      config_groups:"]
    for k, group in enumerate(section["groups"]):
        lines.append(f"        group_{k}:")
        lines.append(f"          # {group['format']}: {_tensors(len(group['targets']))}")
        lines += [f"          # {note}" for note in group["notes"]]
        lines.append("          targets:")
        lines += [f"            - {json.dumps(target)}" for target in group["targets"]]
        lines.append("          weights:")
        lines += [f"            {key}: {json.dumps(value)}"
                  for key, value in group["weights"].items()]
    return "\n".join(lines) + "\n"


def _tensors(n) -> str:
    return f"{n} tensor{'s' * (n != 1)}"


def recipe_bytes(plan) -> bytes:
    return recipe_text(plan).encode("utf-8")
