"""A mixture-of-experts checkpoint's per-expert matrices planned as the one tensor per layer that
llama.cpp holds them in.

A Hugging Face MoE checkpoint stores each expert's projections apart (Mixtral's
model.layers.N.block_sparse_moe.experts.E.w1.weight, Qwen2-MoE's mlp.experts.E.gate_proj.weight);
convert_hf_to_gguf.py stacks a layer's experts into one 3-D tensor (blk.N.ffn_gate_exps.weight),
and llama-quantize gives that tensor one type. So a plan of the safetensors scan plans the
stacked tensor: the scan's rows of one layer's experts become one row, named as convert names
the stack before renaming it (the expert number dropped: ...experts.w1.weight, which gguf-py's
TensorNameMap maps to ffn_gate_exps), its shape [experts, rows, columns], each format's error
the sum of the experts' errors (a ggml type quantizes row by row, so the stack's error is
exactly the sum) and its bits their total; its "experts" lists the checkpoint's tensors it
stacks (an llm-compressor recipe targets those modules). A GGUF already holds the stack:
nothing changes.

Only a whole set is stacked: experts 0..E-1, each with the same shape and stored type, E >= 2.
"""

import math
import re

from quantcalc.scan.roles import layer_and_role

EXPERT = re.compile(r"^(?P<head>.+\.experts)\.(?P<expert>\d+)\.(?P<tail>.+)$")


def stacked_name(name):
    """The name convert gives the stack holding `name`, or None when it is no expert's."""
    match = EXPERT.match(name)
    return None if match is None else f"{match['head']}.{match['tail']}"


def stacked(doc) -> tuple:
    """(the scan document with each layer's experts as one row, the note saying so or None).
    `doc` itself is returned when it has no per-expert rows."""
    groups = {}
    for row in doc["tensors"]:
        match = EXPERT.match(row["name"])
        if match:
            groups.setdefault(f"{match['head']}.{match['tail']}", {})[int(match["expert"])] = row
    whole = {name: [members[e] for e in range(len(members))] for name, members in groups.items()
             if _whole(members)}
    if not whole:
        return doc, None
    out, done = [], set()
    for row in doc["tensors"]:
        name = stacked_name(row["name"])
        if name not in whole:
            out.append(row)
        elif name not in done:  # the stack sits where its first expert did
            done.add(name)
            out.append(_stack(name, whole[name], [f["label"] for f in doc["formats"]]))
    members = sum(len(m) for m in whole.values())
    note = (f"{members} per-expert tensors planned as the {len(whole)} stacked tensors "
            f"convert_hf_to_gguf.py writes (one type for each layer's experts, as "
            f"llama-quantize quantizes them)")
    return {**doc, "tensors": out}, note


def _whole(members) -> bool:
    """Experts 0..E-1 (E >= 2) of one shape and stored type."""
    rows = list(members.values())
    return len(rows) >= 2 and sorted(members) == list(range(len(rows))) and \
        all(r["shape"] == rows[0]["shape"] and r.get("dtype") == rows[0].get("dtype")
            for r in rows)


def _stack(name, members, labels) -> dict:
    first = members[0]
    layer, role = layer_and_role(name)
    row = {key: first.get(key) for key in first if key != "results"}
    row.update(name=name, experts=[m["name"] for m in members],
               layer=first["layer"] if layer is None else layer, role=role,
               shape=[len(members), *first["shape"]],
               parameters=sum(m["parameters"] for m in members),
               data_min=_extreme(min, members, "data_min"),
               data_max=_extreme(max, members, "data_max"))
    for key in ("std", "amax_over_std", "kurtosis", "beyond_6_sigma", "worst_channel",
                "worst_channel_ratio"):
        if key in row:
            row[key] = None
    if isinstance(first.get("bytes"), (int, float)):
        row["bytes"] = sum(m.get("bytes") or 0 for m in members)
    row["results"] = []
    for label in labels:
        found = [next((r for r in m["results"] if r["format"] == label), None) for m in members]
        if all(r is not None for r in found):
            row["results"].append(_combined(found, [m["parameters"] for m in members]))
    return row


def _extreme(pick, members, key):
    values = [m.get(key) for m in members]
    return pick(values) if values and all(isinstance(v, (int, float)) for v in values) else None


def _combined(results, counts) -> dict:
    """One result for the stack: errors summed (their means weighted by parameters), the SQNR
    of the summed signal over the summed error, the interval of the summed error in
    quadrature."""
    failed = next((r for r in results if r.get("error") is not None), None)
    if failed is not None:
        return {**failed, "notes": list(failed.get("notes") or [])}
    total = sum(counts)
    out = {**results[0], "notes": list(results[0].get("notes") or [])}

    def mean(key):
        values = [r.get(key) for r in results]
        if any(not isinstance(v, (int, float)) for v in values):
            return None
        return math.fsum(v * n for v, n in zip(values, counts)) / total

    for key in ("bits_per_value", "mse", "weighted_mse", "clip_rate", "sampled_fraction"):
        out[key] = mean(key)
    errors = [r.get("max_abs_error") for r in results]
    out["max_abs_error"] = max(errors) if all(isinstance(e, (int, float)) for e in errors) \
        else None
    out["sqnr_db"] = _sqnr(results, counts, "mse", "sqnr_db")
    out["weighted_sqnr_db"] = _sqnr(results, counts, "weighted_mse", "weighted_sqnr_db")
    out["rel_rmse"] = None if out["sqnr_db"] is None else 10 ** (-out["sqnr_db"] / 20)
    out["sqnr_ci_db"] = _interval(results, counts)
    return out


def _sqnr(results, counts, error_key, sqnr_key):
    """10 log10(sum of signal / sum of error), each member's signal its error x 10^(SQNR/10)."""
    signal = noise = 0.0
    for r, n in zip(results, counts):
        error, sqnr = r.get(error_key), r.get(sqnr_key)
        if not isinstance(error, (int, float)) or not isinstance(sqnr, (int, float)):
            return None
        if error > 0 and math.isfinite(sqnr):
            signal += error * n * 10 ** (sqnr / 10)
        noise += error * n
    if noise == 0:
        return math.inf
    return 10 * math.log10(signal / noise) if signal > 0 else None


def _interval(results, counts):
    """The 95 % half-width in dB of the summed error: each member's relative standard error
    (from its half-width) applied to its error, summed in quadrature."""
    errors = [r.get("mse") or 0.0 for r in results]
    total = math.fsum(e * n for e, n in zip(errors, counts))
    halves = [r.get("sqnr_ci_db") for r in results]
    if not total or not all(isinstance(h, (int, float)) and math.isfinite(h) for h in halves):
        return results[0].get("sqnr_ci_db")
    # half-width in dB = z x 10/ln 10 x relative se: the same factor for every member
    spread = math.sqrt(math.fsum((h * e * n) ** 2 for h, e, n in zip(halves, errors, counts)))
    return spread / total
