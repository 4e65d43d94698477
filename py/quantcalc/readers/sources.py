"""What the user chose -> values: the one place a request's source becomes a finite float array.

A source is one of:
  {"text": "-1.25, -0.92, ..."}                                        pasted values
  {"file_path": "/input/1/w.safetensors", "tensor": "layer.weight"}   a file (the page's worker
                                                                       mounts the user's File)
  {"file_name": "w.npy", "file_bytes": b"..."}                         bytes in memory
  {"checkpoint": ["/scan/1/model.safetensors.index.json", ...],
   "tensor": "model.layers.0.mlp.down_proj.weight"}                    one tensor of a scanned
                                                                       checkpoint, read by offset
and optionally "imatrix": {"file_path" | "file_bytes", "file_name", "entry", "expert"}, llama.cpp's
importance matrix for the tensor (entry: its name there; by default the tensor's own name).
"""

import os
import stat

from quantcalc.errors import QuantcalcError
from quantcalc.readers import text as inputs
from quantcalc.schema import file_types


def file_bytes(source: dict):
    """(bytes, file name) of a source read whole: its bytes in memory, or its regular file."""
    if source.get("file_bytes") is not None:
        return bytes(source["file_bytes"]), str(source.get("file_name") or "file")
    path = str(source["file_path"])
    name = str(source.get("file_name") or os.path.basename(path) or "file")
    try:
        with open(path, "rb") as stream:
            # the size is checked before reading: /dev/zero (or a link to it named x.npy) is
            # endless, and a pipe has no size to check
            if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                raise QuantcalcError(f"{name} is not a regular file (a device, pipe or "
                                     f"folder); give a file, or - to read text on stdin", "file")
            return stream.read(), name
    except OSError as exc:
        raise QuantcalcError(f"cannot read {name}: {exc.strerror}", "file") from None


def read_by_offset(source: dict):
    """The path of a file source the calculator reads by offset, the chosen tensor only (its
    file type says so), or None for a file read whole (or bytes in memory)."""
    path = source.get("file_path")
    if path is None or source.get("file_bytes") is not None:
        return None
    kind = file_types.of(source.get("file_name") or path)
    by_offset = kind is not None and kind.by_offset and file_types.CALCULATOR in kind.tools
    return str(path) if by_offset else None


def load(source: dict):
    """The source's values as a finite float array; raises QuantcalcError."""
    if not isinstance(source, dict):
        raise QuantcalcError("no values given", "values")
    if source.get("checkpoint") or read_by_offset(source) is not None:
        return _load_by_offset(source)
    if source.get("file_bytes") is not None or source.get("file_path") is not None:
        data, name = file_bytes(source)
        values = inputs.parse_file(data, name, source.get("tensor") or None)
        return inputs.check_finite(values, "file")
    text = source.get("text")
    if text is None or not str(text).strip():
        raise QuantcalcError("enter some sample values or choose a file", "values")
    return inputs.check_finite(inputs.parse_text(str(text)), "values")


def _load_by_offset(source: dict):
    """One tensor of a checkpoint or of a file read by offset. The checkpoint readers load here,
    on first use: pasted values (the page's first visit) never need them."""
    from quantcalc.readers import checkpoint

    if source.get("checkpoint"):
        entry = checkpoint.open_checkpoint(list(source["checkpoint"])).get(source.get("tensor"))
        return inputs.check_finite(checkpoint.SlabReader(entry).read_all(), "file")
    values = checkpoint.read_tensor(read_by_offset(source), source.get("tensor") or None)
    return inputs.check_finite(values, "file")


def load_importance(source: dict, values, config):
    """The importance weights of the source's tensor from its imatrix file, or None."""
    spec = source.get("imatrix") if isinstance(source, dict) else None
    if not spec:
        return None
    try:
        data, name = file_bytes(spec)
    except QuantcalcError as exc:
        raise QuantcalcError(exc.message, "imatrix") from None
    from quantcalc.readers import imatrix  # only with an importance matrix

    matrix = imatrix.read(data, name)
    entry = spec.get("entry") or source.get("tensor") or config.name
    columns = values.shape[-1] if values.ndim else 1
    expert = spec.get("expert")
    return matrix.for_tensor(str(entry), columns, None if expert in (None, "") else int(expert))
