"""How each quantized layer of a safetensors checkpoint is stored, from config.json's
`quantization_config` and the tensors beside the weight: which decoder of formats/stored reads
it, with which arguments, and what to call its format.

    quant_method "fp8" (DeepSeek-V3, Qwen3-FP8): `weight` F8 with `weight_scale_inv`, one scale
        per `weight_block_size` tile ([128, 128]; without a config, the tile the shapes imply).
    quant_method "compressed-tensors" (llm-compressor): `config_groups` whose `targets` (module
        names, `re:` patterns, or class names such as "Linear") and the `ignore` list say which
        group's `weights` arguments a layer takes; its `format` (the group's own, or the
        config's) picks pack-, int-, float- or nvfp4-pack-quantized.
    quant_method "gptq" / "awq": `bits`, `group_size` (AutoAWQ: `w_bit`, `q_group_size`),
        `sym`, `desc_act`, `checkpoint_format`, `version`.

Without a config, FP8 with scales is still read (its layout follows from the shapes); packed
integers are refused with the reason (their bit width and groups are in the config only).
"""

import re

from quantcalc.errors import QuantcalcError, shortened
from quantcalc.formats.stored.ct_args import weight_args
from quantcalc.records import record

FP8_KINDS = {"F8_E4M3": "e4m3", "F8_E5M2": "e5m2"}


@record(frozen=True)
class LayerScheme:
    """A layer's decoder: `method` ("fp8", "compressed-tensors", "gptq", "awq"), `label` (the
    stored format in words: "int4 group 128 symmetric"), and the decoder's arguments."""

    method: str
    label: str
    args: dict


def quantization_config(config):
    """config.json's quantization_config as a dict (None when there is none); a value of
    another type is refused."""
    if config is None:
        return None
    found = config.get("quantization_config")
    if found is None:
        return None
    if not isinstance(found, dict):
        raise QuantcalcError(f"config.json's quantization_config is a "
                             f"{type(found).__name__}, not an object", "file")
    return found


def method_of(qconfig) -> str:
    return str(qconfig.get("quant_method", "")).lower() if qconfig else ""


def fp8_scheme(layer, weight_dtype, scale_suffix, qconfig) -> LayerScheme:
    """A weight stored as FP8 with `scale_suffix` (weight_scale_inv, weight_scale, or None)."""
    kind = FP8_KINDS[weight_dtype]
    name = f"FP8 {kind.upper()}"
    if scale_suffix == "weight_scale_inv":
        block = _block_size(qconfig, layer)
        words = f"{block[0]}x{block[1]} blocks" if block else "blocks"
        return LayerScheme("fp8", f"{name} {words}", {"kind": kind, "block": block,
                                                      "scale": scale_suffix})
    if method_of(qconfig) == "compressed-tensors":
        return compressed_scheme(layer, "float-quantized", qconfig)
    words = "scaled" if scale_suffix else "unscaled"
    return LayerScheme("fp8", f"{name} {words}", {"kind": kind, "block": None,
                                                  "scale": scale_suffix})


def _block_size(qconfig, layer):
    """quantization_config.weight_block_size as (rows, columns), or None (from the shapes)."""
    value = (qconfig or {}).get("weight_block_size")
    if value is None:
        return None
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in value)
    if not ok:
        raise QuantcalcError(f"config.json's weight_block_size is {shortened(str(value), 40)}; "
                             f"it must be two positive integers such as [128, 128] (layer "
                             f"{shortened(layer, 60)})", "file")
    return int(value[0]), int(value[1])


def compressed_scheme(layer, detected_format, qconfig) -> LayerScheme:
    """The compressed-tensors scheme of `layer` (a module name: model.layers.0.mlp.down_proj):
    the config group whose targets name it (else one that targets a class, such as Linear)."""
    if method_of(qconfig) != "compressed-tensors":
        raise QuantcalcError(f"'{shortened(layer, 60)}' is stored as compressed-tensors "
                             f"{detected_format}, but config.json has no compressed-tensors "
                             f"quantization_config to say its bits and groups", "file")
    groups = qconfig.get("config_groups")
    if not isinstance(groups, dict) or not groups:
        raise QuantcalcError("config.json's compressed-tensors quantization_config has no "
                             "config_groups", "file")
    ignore = qconfig.get("ignore")
    if isinstance(ignore, list) and any(isinstance(t, str) and (
            _matches(t[3:], layer) if t.startswith("re:") else t == layer) for t in ignore):
        raise QuantcalcError(f"'{shortened(layer, 60)}' is stored as compressed-tensors "
                             f"{detected_format}, but config.json's ignore list names it (left "
                             f"unquantized): the file and its config disagree", "file")
    group = _group_for(layer, groups)
    if group is None:
        raise QuantcalcError(f"no config group of config.json targets '{shortened(layer, 60)}' "
                             f"(targets: {_targets_text(groups)})", "file")
    weights = group.get("weights")
    if not isinstance(weights, dict):
        raise QuantcalcError(f"the config group of '{shortened(layer, 60)}' has no weights "
                             f"arguments", "file")
    args = weight_args(weights, layer)
    fmt = group.get("format") or qconfig.get("format") or detected_format
    if fmt == "mixed-precision":
        fmt = detected_format
    return LayerScheme("compressed-tensors", args.describe(), {"args": args, "format": fmt})


def _group_for(layer, groups):
    """The group whose targets match `layer` by name ("re:" pattern or the exact name), else
    the first that targets a class name ("Linear"): a checkpoint names modules, not classes."""
    by_class = None
    for group in groups.values():
        targets = group.get("targets") if isinstance(group, dict) else None
        for target in targets if isinstance(targets, list) else []:
            if not isinstance(target, str):
                continue
            if target.startswith("re:"):
                if _matches(target[3:], layer):
                    return group
            elif target == layer:
                return group
            elif by_class is None and "." not in target:
                by_class = group
    return by_class


def _matches(pattern, layer) -> bool:
    """re.match as compressed-tensors matches targets; a pattern that does not compile never
    matches (and is named by the message that no group targets the layer)."""
    try:
        return re.match(pattern, layer) is not None
    except re.error:
        return False


def _targets_text(groups) -> str:
    names = [str(t) for g in groups.values() if isinstance(g, dict)
             for t in (g.get("targets") or [])]
    return shortened(", ".join(names), 80) or "none"


def packed_scheme(layer, own, qconfig) -> LayerScheme:
    """GPTQ or AWQ (`qweight`): bits and groups from quantization_config."""
    method = method_of(qconfig)
    if method not in ("gptq", "awq"):
        raise QuantcalcError(f"'{shortened(layer, 60)}' is stored as GPTQ/AWQ packed integers "
                             f"(qweight), but config.json has no gptq or awq quantization_config "
                             f"to say their bits and groups", "file")
    bits = qconfig.get("bits", qconfig.get("w_bit"))
    group_size = qconfig.get("group_size", qconfig.get("q_group_size"))
    size = "per channel" if group_size == -1 else f"group {group_size}"
    if method == "awq":
        version = qconfig.get("version", "gemm")
        return LayerScheme("awq", f"AWQ int{bits} {size}",
                           {"bits": bits, "group_size": group_size, "version": version})
    sym = qconfig.get("sym", True)
    args = {"bits": bits, "group_size": group_size, "sym": sym,
            "checkpoint_format": qconfig.get("checkpoint_format", "gptq"),
            "desc_act": qconfig.get("desc_act")}
    order = " act-order" if qconfig.get("desc_act") else ""
    return LayerScheme("gptq", f"GPTQ int{bits} {size} "
                       f"{'symmetric' if sym else 'asymmetric'}{order}", args)
