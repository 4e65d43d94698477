"""What a checkpoint says about its model beside its tensors: the config.json Hugging Face
writes next to the weights (model_type, architectures, head counts and, for a quantized
checkpoint, how its weights are stored: quantization_config), and a GGUF's metadata
(general.architecture, <arch>.attention.head_count, ...). The config is read from the folders
given, then those of the data files; a file that is missing, too big, not JSON or not an object
is None, and each caller says what it does without it."""

import json
import os

from quantcalc.errors import QuantcalcError
from quantcalc.readers import file_parts
from quantcalc.readers import gguf as gguf_file

MAX_CONFIG_BYTES = 4 << 20  # a config.json is a few kB; a bigger one is not read


def find_config(paths, checkpoint):
    """(config dict, its path) of the first config.json beside `paths` or the checkpoint's data
    files, or (None, None)."""
    for folder in folders(paths, checkpoint):
        path = os.path.join(folder, "config.json")
        config = read_config(path)
        if config is not None:
            return config, path
    return None, None


def folders(paths, checkpoint) -> list:
    """The folders a config.json may sit in: those given, then those of the data files."""
    given = [str(p) for p in paths if os.path.isdir(str(p))]
    files = [os.path.dirname(path) or "." for path, _ in checkpoint.files]
    return list(dict.fromkeys(given + files))


def read_config(path):
    """The JSON object in `path`, or None (missing, too big, not JSON, not an object)."""
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > MAX_CONFIG_BYTES:
            return None
        with open(path, "rb") as stream:
            config = json.loads(stream.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return config if isinstance(config, dict) else None


def gguf_metadata(path):
    """The metadata of the GGUF at `path` (its header only), or None where it cannot be read."""
    try:
        with file_parts.open_file(path) as stream:
            def read(offset, size):
                stream.seek(offset)
                return stream.read(size)
            return gguf_file.read_header(read, file_parts.size(path),
                                         os.path.basename(path)).metadata
    except (QuantcalcError, OSError):
        return None
