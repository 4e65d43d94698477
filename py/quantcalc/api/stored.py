"""What a tensor already is in its file: its stored format when it is stored quantized (a GGUF's
Q4_1 tensor), so a result says that its values are dequantized ones and that the error shown is
that of quantizing them again, not the error against the original weights.

The stored type is the checkpoint's tensor entry (readers/checkpoint.py): its `stored_format`
where a reader gives one (a format with scales stored beside it), else its type when it is one
of llama.cpp's quantized types. A file read whole from memory is a GGUF's header entry.
"""

from quantcalc.errors import QuantcalcError
from quantcalc.readers import sources


def stored_format(source) -> tuple:
    """(stored format, bits per value or None) of the source's tensor, or (None, None) for a
    tensor stored as plain numbers (or text, or a file that says nothing)."""
    try:
        entry = _entry(source)
    except (QuantcalcError, OSError, KeyError, IndexError, TypeError):
        return None, None  # the values were read: only the description is missing
    if entry is None:
        return None, None
    given = getattr(entry, "stored_format", None)
    if isinstance(given, str) and given:
        return given, None
    if getattr(entry, "quantized", False):
        from quantcalc.formats.ggml import decode as ggml_decode
        return entry.dtype, ggml_decode.bits_per_value(entry.ggml_type)
    return None, None


def _entry(source):
    """The checkpoint entry of the source's tensor (a GGUF header's entry for bytes), or None."""
    if not isinstance(source, dict) or source.get("text") is not None:
        return None  # pasted values: no file to say anything
    # the checkpoint and GGUF readers load here, when a file is analysed: never at start-up
    from quantcalc.readers import checkpoint
    from quantcalc.readers import gguf as gguf_file

    tensor = source.get("tensor") or None
    if source.get("checkpoint"):
        return checkpoint.open_checkpoint(list(source["checkpoint"])).get(tensor)
    path = sources.read_by_offset(source)
    if path is not None:
        model = checkpoint.open_checkpoint([path])
        return model.get(tensor) if tensor else model.tensors[0]
    name = str(source.get("file_name") or source.get("file_path") or "")
    if source.get("file_bytes") is not None and name.lower().endswith(".gguf"):
        data, name = sources.file_bytes(source)
        header = gguf_file.read_bytes_header(data, name)
        info = header.tensors.get(tensor) if tensor else next(iter(header.tensors.values()),
                                                                None)
        if info is not None and info.ggml_type not in gguf_file.PLAIN_TYPES:
            return _Quantized(gguf_file.type_name(info.ggml_type), info.ggml_type)
    return None


class _Quantized:
    """A GGUF header entry of a quantized tensor, as much of a checkpoint entry as needed."""

    quantized = True

    def __init__(self, dtype, ggml_type):
        self.dtype, self.ggml_type = dtype, ggml_type


def note(stored, bits=None) -> str:
    """What the result of a tensor stored as `stored` measures."""
    size = f" ({bits:g} bits per value)" if bits else ""
    return (f"stored as {stored}{size}: these are its dequantized values, so the error shown is "
            f"that of re-quantizing them, not the error against the original weights (they are "
            f"not in the file)")
