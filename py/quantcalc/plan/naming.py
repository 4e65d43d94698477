"""The GGUF name of each tensor of a scan: what convert_hf_to_gguf.py calls it in the GGUF it
writes (the GGUF's own names, for a GGUF), by gguf-py's table for the model's architecture
(schema/gguf_names.py).

The architecture is the scan's "model" facts (api/model_facts.py: a GGUF's
general.architecture, or config.json beside a safetensors checkpoint); without them, the
architecture whose table knows most of the names, said so in the plan.
"""

from quantcalc.schema import gguf_names


def naming(doc) -> dict:
    """{"architecture", "source", "block_count", "gguf_py", "guessed", "names": {name: GGUF
    name or None}} for the scan document `doc`; "guessed" when the architecture is the one
    whose names match most (a tensor without a GGUF name may then be one it does not know)."""
    facts = doc.get("model") if isinstance(doc.get("model"), dict) else {}
    architecture = facts.get("architecture")
    source = facts.get("source")
    blocks = facts.get("block_count")
    if not (isinstance(blocks, int) and not isinstance(blocks, bool) and blocks >= 0):
        blocks = None
    names = [row["name"] for row in doc["tensors"]]
    guessed = architecture not in gguf_names.ARCHITECTURES
    if guessed:
        guessed, mapped = gguf_names.infer_architecture(names)
        unknown = f"{architecture} is not an architecture gguf-py {gguf_names.GGUF_PY_VERSION}" \
                  f" knows" if isinstance(architecture, str) and architecture else \
                  "no general.architecture or config.json model_type"
        architecture, blocks = guessed, None
        source = None if guessed is None else \
            f"the architecture whose names match most tensors ({mapped} of {len(names)}; " \
            f"{unknown})"
    mapper = None if architecture is None else gguf_names.name_map(architecture, blocks)
    return {"architecture": architecture, "source": source, "block_count": blocks,
            "gguf_py": gguf_names.GGUF_PY_VERSION, "guessed": guessed,
            "names": {name: None if mapper is None else mapper.get(name) for name in names}}
