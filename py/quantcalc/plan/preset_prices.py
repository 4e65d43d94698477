"""llama.cpp's presets priced on a scan: each preset's size and total error, measured with the
same per-tensor error as the plan, so the plan can be set beside each at its size.

A preset is priced when the scan measured every tensor it quantizes under the type it gives
(a fallback type included); otherwise it is left out, and the plan says why: the formats to
scan too (`missing`), or the tensor that was not measured (`notes`). Tensors a preset leaves
as they are count as the plan counts them (norms in F32, a tensor kept as stored at its stored
size, the rest in F16).
"""

from quantcalc.plan import llama_presets


def preset_points(doc, tensors, gguf_names=None, block_count=None) -> tuple:
    """([{"preset", "bits", "error", "types"}], [formats to scan too], [notes]); block_count
    the model's blocks, as llama_presets.assign takes it."""
    by_name = {t.name: t for t in tensors}
    labels = {f["label"] for f in doc["formats"]}
    out, missing, notes = [], set(), []
    for preset in llama_presets.FTYPES:
        types = llama_presets.assign(doc["tensors"], preset, gguf_names, block_count)
        priced = _price(doc, by_name, types, labels)
        if isinstance(priced, tuple):
            out.append({"preset": preset, "bits": priced[0], "error": priced[1],
                        "types": types})
        elif priced.startswith("not measured"):
            notes.append(f"{preset} not priced: {priced}")
        else:
            missing.add(priced)
    return out, sorted(missing), _first_of_each(notes)


def _price(doc, by_name, types, labels):
    """(bits, error) of the preset's `types`, or what stops it: a format the scan lacks, or
    "not measured: ..." naming the tensor."""
    bits = error = 0.0
    for row in doc["tensors"]:
        tensor = by_name.get(row["name"])
        if tensor is None:
            return f"not measured: {row['name']} is not among the plan's tensors"
        kind = types.get(row["name"])
        if kind == llama_presets.STOPS:
            return (f"not measured: llama-quantize stops on {row['name']} (its row length "
                    f"{row['shape'][-1]} is not a multiple of 32, and no type of blocks of 32 "
                    f"has a fallback)")
        if kind is None or kind == "F16":
            bits += tensor.kept_bits if tensor.kept else 16.0 * tensor.parameters
            continue
        option = next((o for o in tensor.options if o[0] == kind), None)
        if option is None:
            if kind not in labels:
                return kind
            # a kept tensor (pattern) or a type the scan refused for this tensor
            result = next((r for r in row["results"] if r["format"] == kind), None)
            if result is None or result["error"] is not None:
                why = tensor.reason if tensor.kept else \
                    (result or {}).get("error") or "not in the scan"
                return f"not measured: {row['name']} under {kind} ({why})"
            option = (kind, result["bits_per_value"] * tensor.parameters,
                      result["mse"] * tensor.parameters)
        bits += option[1]
        error += option[2]
    return bits, error


def _first_of_each(notes) -> list:
    """One note per reason: presets stopped by the same tensor are said together."""
    merged = {}
    for note in notes:
        preset, _, reason = note.partition(" not priced: ")
        merged.setdefault(reason, []).append(preset)
    return [f"{', '.join(presets)} not priced: {reason}" for reason, presets in merged.items()]
