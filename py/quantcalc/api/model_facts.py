"""What a scan records about the model beside its tensors: its architecture, as the field names
it (a GGUF's general.architecture, or the model_type / architectures of the config.json beside
a safetensors checkpoint), and its number of blocks, so the plan can name each tensor as
convert_hf_to_gguf.py does (plan/naming.py).

Each fact is read from a file, so each has a fallback: a file that is missing, unreadable or
says nothing usable gives None, and the plan then says how it named the tensors instead.
"""

import json
import os

from quantcalc.errors import QuantcalcError
from quantcalc.readers import file_parts
from quantcalc.readers import gguf as gguf_file
from quantcalc.schema import gguf_names

MAX_CONFIG_BYTES = 4 << 20  # a config.json is a few kB; a bigger one is not read


def model_facts(paths, checkpoint) -> dict:
    """{"architecture", "source", "block_count"} of the checkpoint opened from `paths`."""
    for path, _ in checkpoint.files:
        if path.lower().endswith(".gguf"):
            facts = _gguf_facts(path)
            if facts["architecture"] is not None:
                return facts
    for folder in _folders(paths, checkpoint):
        config = _config(os.path.join(folder, "config.json"))
        if config is not None:
            architecture, source = gguf_names.architecture_of_config(config)
            return {"architecture": architecture, "source": source,
                    "block_count": gguf_names.block_count_of_config(config)}
    return {"architecture": None, "source": None, "block_count": None}


def _folders(paths, checkpoint) -> list:
    """The folders a config.json may sit in: those given, then those of the data files."""
    given = [str(p) for p in paths if os.path.isdir(str(p))]
    files = [os.path.dirname(path) or "." for path, _ in checkpoint.files]
    return list(dict.fromkeys(given + files))


def _gguf_facts(path) -> dict:
    """general.architecture and <architecture>.block_count of a GGUF's metadata."""
    nothing = {"architecture": None, "source": None, "block_count": None}
    try:
        with file_parts.open_file(path) as stream:
            def read(offset, size):
                stream.seek(offset)
                return stream.read(size)
            metadata = gguf_file.read_header(read, file_parts.size(path),
                                             os.path.basename(path)).metadata
    except (QuantcalcError, OSError):
        return nothing
    architecture = metadata.get("general.architecture")
    if not isinstance(architecture, str) or not architecture:
        return nothing
    blocks = metadata.get(f"{architecture}.block_count")
    return {"architecture": architecture,
            "source": f"general.architecture of {os.path.basename(path)}",
            "block_count": blocks if isinstance(blocks, int) and not isinstance(blocks, bool)
            and blocks >= 0 else None}


def _config(path):
    """The JSON object in `path`, or None (missing, too big, not JSON, not an object)."""
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > MAX_CONFIG_BYTES:
            return None
        with open(path, "rb") as stream:
            config = json.loads(stream.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return config if isinstance(config, dict) else None
