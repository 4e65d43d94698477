"""What a scan records about the model beside its tensors: its architecture, as the field names
it (a GGUF's general.architecture, or the model_type / architectures of the config.json beside
a safetensors checkpoint), and its number of blocks, so the plan can name each tensor as
convert_hf_to_gguf.py does (plan/naming.py).

Each fact is read from a file, so each has a fallback: a file that is missing, unreadable or
says nothing usable gives None, and the plan then says how it named the tensors instead.
"""

import os

from quantcalc.readers import model_config
from quantcalc.schema import gguf_names


def model_facts(paths, checkpoint) -> dict:
    """{"architecture", "source", "block_count"} of the checkpoint opened from `paths`."""
    for path, _ in checkpoint.files:
        if path.lower().endswith(".gguf"):
            facts = _gguf_facts(path)
            if facts["architecture"] is not None:
                return facts
    config, _ = model_config.find_config(paths, checkpoint)
    if config is not None:
        architecture, source = gguf_names.architecture_of_config(config)
        return {"architecture": architecture, "source": source,
                "block_count": gguf_names.block_count_of_config(config)}
    return {"architecture": None, "source": None, "block_count": None}


def _gguf_facts(path) -> dict:
    """general.architecture and <architecture>.block_count of a GGUF's metadata."""
    nothing = {"architecture": None, "source": None, "block_count": None}
    metadata = model_config.gguf_metadata(path)
    if metadata is None:
        return nothing
    architecture = metadata.get("general.architecture")
    if not isinstance(architecture, str) or not architecture:
        return nothing
    blocks = metadata.get(f"{architecture}.block_count")
    return {"architecture": architecture,
            "source": f"general.architecture of {os.path.basename(path)}",
            "block_count": blocks if isinstance(blocks, int) and not isinstance(blocks, bool)
            and blocks >= 0 else None}
