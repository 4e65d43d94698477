"""What a tensor already is in its file: its stored format when it is stored quantized (a GGUF's
Q4_1 tensor, a safetensors FP8 tensor with its scales), so a result says that its values are
dequantized ones and that the error shown is that of quantizing them again, not the error
against the original weights.

`load` reads a source's values and its tensor's stored format from one opening of the file's
header: the checkpoint entry that locates the values also says how they are stored
(readers/checkpoint.py: a GGUF type, or readers/stored_safetensors.py's StoredFormat). Packed
integers (GPTQ / AWQ `qweight`, compressed-tensors `weight_packed`) are decoded with their
scales as the model's config.json `quantization_config` says (readers/stored_layers.py); where
that cannot be done they are refused in one line naming the format and why, never analysed as
their raw integers. A file read whole from memory is a GGUF's header entry, or nothing.
"""

from quantcalc.errors import QuantcalcError
from quantcalc.readers import sources
from quantcalc.readers import text as inputs
from quantcalc.records import record


@record
class Loaded:
    """A source's values, the format its tensor is stored in (None for plain numbers) with its
    bits per value, and the notes every result of these values carries."""

    values: object
    stored_format: object = None
    bits: object = None
    notes: list = None


def load(source) -> Loaded:
    """The values of a source and what its file says of them, its header opened once: a
    tensor stored quantized (its values are dequantized ones), or one the scan leaves as stored
    (integers: readers/checkpoint.py's rule, stated here as the scan states it)."""
    model, entry = _checkpoint_entry(source)
    if entry is None:
        values = sources.load(source)
        kept = _file_entry(source)
        return Loaded(values, *_in_memory(source), notes=_kept_notes(kept))
    from quantcalc.readers import checkpoint, stored_safetensors

    layer = _packed_layer(source, model, entry)
    if layer is not None and layer.refusal:  # e.g. no quantization_config to read it by
        raise QuantcalcError(f"{stored_safetensors.refusal(entry)} ({layer.refusal})", "tensor")
    if layer is not None:  # GPTQ / AWQ / compressed-tensors: decoded with its scales
        values = _layer_values(layer)
        notes = [note(layer.label, layer.bits_per_value)]
        return Loaded(inputs.check_finite(values, "file"), layer.label, layer.bits_per_value,
                      notes)
    if source.get("checkpoint"):  # a scanned tensor: floats only, as the scan reads them
        values = stored_safetensors.values_reader(entry).read_all()
    else:
        values = checkpoint.read_entry(entry)
    kind, bits = described(entry)
    notes = [note(kind, bits)] if kind else []
    return Loaded(inputs.check_finite(values, "file"), kind, bits, notes + _kept_notes(entry))


def _packed_layer(source, model, entry):
    """The quantized layer (readers/stored_layers) whose packed weight `entry` is (GPTQ qweight,
    compressed-tensors weight_packed), read with its scales and the model's
    quantization_config; None for any other tensor."""
    stored = getattr(entry, "stored", None)
    if stored is None or stored.decoded or stored.part_of:
        return None
    from quantcalc.readers import model_config, stored_layers

    paths = list(source["checkpoint"]) if source.get("checkpoint") else [entry.path]
    config, _ = model_config.find_config(paths, model)  # `model`: the header opened once
    layers = stored_layers.find_layers(model, config)
    return next((layer for layer in layers.values() if entry.name in
                 {part.name for part in layer.parts.values()}), None)


def _layer_values(layer):
    """A packed layer's dequantized weight, decoded a slab of rows at a time."""
    import numpy as np
    parts = [values for _, values in layer.slabs(max(1, (1 << 20) // max(layer.shape[-1], 1)))]
    return np.concatenate(parts) if parts else np.empty(layer.shape, np.float32)


def _kept_notes(entry) -> list:
    """The scan's reason for leaving the tensor as stored, and what these results are then."""
    reason = getattr(entry, "not_quantized", None)
    return [f"{reason}; a model scan keeps them as stored, and these results quantize them as "
            f"plain numbers"] if reason else []


def _file_entry(source):
    """The entry of an .npy or .npz file read whole (for what it is stored as), or None."""
    path = source.get("file_path") if isinstance(source, dict) else None
    if path is None or source.get("file_bytes") is not None:
        return None
    if not str(source.get("file_name") or path).lower().endswith((".npy", ".npz")):
        return None
    from quantcalc.readers import checkpoint

    try:
        model = checkpoint.open_checkpoint([str(path)])
        tensor = source.get("tensor")
        return model.get(tensor) if tensor else model.tensors[0]
    except (QuantcalcError, OSError, IndexError):
        return None  # the values were read: only the description is missing


def described(entry) -> tuple:
    """(stored format, bits per value or None) of a checkpoint entry, (None, None) for a
    tensor stored as plain numbers."""
    stored = getattr(entry, "stored", None)
    if stored is not None and not stored.part_of:
        from quantcalc.readers import stored_safetensors
        return stored.label, stored_safetensors.bits_per_value(entry)
    if getattr(entry, "quantized", False):
        from quantcalc.formats.ggml import decode as ggml_decode
        return entry.dtype, ggml_decode.bits_per_value(entry.ggml_type)
    return None, None


def _checkpoint_entry(source):
    """(checkpoint, entry) of a source read by offset (a scanned checkpoint's tensor, or a
    .safetensors / .gguf file), or (None, None) for pasted values and files read whole."""
    if not isinstance(source, dict) or source.get("text") is not None:
        return None, None
    from quantcalc.readers import checkpoint  # loads when a file is analysed, not at start-up

    tensor = source.get("tensor") or None
    if source.get("checkpoint"):
        model = checkpoint.open_checkpoint(list(source["checkpoint"]))
        return model, model.get(tensor)
    path = sources.read_by_offset(source)
    if path is None:
        return None, None
    model = checkpoint.open_checkpoint([path])
    return model, model.get(tensor) if tensor else model.tensors[0]


def _in_memory(source) -> tuple:
    """(stored format, bits) of a GGUF given as bytes in memory (its header's entry), else
    (None, None)."""
    if not isinstance(source, dict) or source.get("file_bytes") is None:
        return None, None
    name = str(source.get("file_name") or source.get("file_path") or "")
    if not name.lower().endswith(".gguf"):
        return None, None
    from quantcalc.formats.ggml import decode as ggml_decode
    from quantcalc.readers import gguf as gguf_file

    try:
        data, name = sources.file_bytes(source)
        header = gguf_file.read_bytes_header(data, name)
    except (QuantcalcError, OSError):
        return None, None  # the values were read: only the description is missing
    tensor = source.get("tensor") or None
    info = header.tensors.get(tensor) if tensor else next(iter(header.tensors.values()), None)
    if info is None or info.ggml_type in gguf_file.PLAIN_TYPES:
        return None, None
    return gguf_file.type_name(info.ggml_type), ggml_decode.bits_per_value(info.ggml_type)


def note(stored, bits=None) -> str:
    """What the result of a tensor stored as `stored` measures."""
    size = f" ({bits:g} bits per value)" if bits else ""
    return (f"stored as {stored}{size}: these are its dequantized values, so the error shown is "
            f"that of re-quantizing them, not the error against the original weights (they are "
            f"not in the file)")
