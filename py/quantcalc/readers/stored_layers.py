"""The quantized layers of a safetensors checkpoint, each read a slab of its weight's rows at a
time: for each slab, the part of every stored tensor those rows need is read by offset (rows of
`weight_packed` and its scales, columns of GPTQ's `qweight`, the whole of a small `g_idx`) and
decoded by formats/stored (FP8 with scales, compressed-tensors, GPTQ, AWQ); quant_config.py says
which decoder and arguments each layer takes. Memory holds one slab, never a whole layer.

A layer is named as its original weight is (`model.layers.0.mlp.down_proj.weight`), so the
audit pairs it with the original checkpoint's tensor of that name. A layer quantcalc cannot read
(packed integers without a config) keeps the reason, said in one line. gpt-oss's MXFP4 experts
(`W_blocks`, `W_scales`) are read an expert at a time, in transformers' layout.
"""

import math
import os
from dataclasses import field

import numpy as np

from quantcalc.errors import QuantcalcError, shortened
from quantcalc.formats.stored import compressed_tensors, fp8, gptq_awq, mxfp4
from quantcalc.readers import file_parts, quant_config
from quantcalc.readers.arrays import SAFETENSORS_DTYPES, bf16_to_float32
from quantcalc.readers.slab_reader import read_exactly
from quantcalc.readers.stored_safetensors import tile
from quantcalc.records import record

COMPANIONS = ("weight_scale", "weight_scale_inv", "weight_zero_point", "weight_shape",
              "weight_g_idx", "weight_global_scale", "input_scale", "input_global_scale",
              "qzeros", "scales", "g_idx")
ROWS = (0, 1, 1)  # a part cut along its first axis, one row per weight row


@record
class StoredLayer:
    """One quantized layer. `parts`: its stored tensors by suffix; `cuts`: how each is cut for
    a slab of weight rows, (axis, numerator, denominator): the part's indices
    [r0 num // den, ceil(r1 num / den)) along `axis`, or None for the whole part; `align`: slabs
    start at multiples of it."""

    name: str
    module: str
    label: str
    shape: tuple = ()
    parts: dict = field(default_factory=dict)
    cuts: dict = field(default_factory=dict)
    align: int = 1
    method: str = ""    # the decoder: "fp8", "fp8-block", "fp8-scaled", "compressed-tensors",
    args: dict = field(default_factory=dict)  # "gptq", "awq"; and its arguments (picklable)
    refusal: str = None

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self.parts.values())

    @property
    def count(self) -> int:
        return math.prod(self.shape) if self.shape else 0

    @property
    def bits_per_value(self):
        return 8.0 * self.nbytes / self.count if self.count else None

    def decode(self, tensors):
        """The float32 weight rows the slab's stored `tensors` (by suffix) hold."""
        a, layer = self.args, self.module
        if self.method == "fp8":
            return fp8.table(a["kind"])[tensors["weight"]]
        if self.method == "fp8-block":
            return fp8.block_scaled(tensors["weight"], tensors["weight_scale_inv"], a["block"],
                                    a["kind"], layer)
        if self.method == "fp8-scaled":
            return fp8.scaled(tensors["weight"], tensors["weight_scale"], a["kind"], layer)
        if self.method == "compressed-tensors":
            return compressed_tensors.dequantize(tensors, a["args"], a["format"], layer)
        if self.method == "mxfp4":
            return mxfp4.dequantize(tensors["_blocks"], tensors["_scales"], layer)
        if self.method == "awq":
            return gptq_awq.dequantize_awq(tensors, a["bits"], a["group_size"], a["version"],
                                           layer)
        return gptq_awq.dequantize_gptq(tensors, a["bits"], a["group_size"], a["sym"],
                                        a["checkpoint_format"], a["desc_act"], layer)

    def slabs(self, rows_per_slab):
        """Yield (first row, float32 values (rows, columns)) over the whole weight."""
        for first, values, _ in self.slabs_and_parts(rows_per_slab):
            yield first, values

    def slabs_and_parts(self, rows_per_slab):
        """Yield (first row, float32 values, the slab's stored parts by suffix) over the whole
        weight: the parts are what the audit compares with a remade quantization."""
        if self.refusal:
            raise QuantcalcError(self.refusal, "tensor")
        rows, cols = self.shape[0], self.shape[-1]
        inner = tuple(self.shape[1:])
        step = max(self.align, -(-int(rows_per_slab) // self.align) * self.align)
        whole = {k: _read(e, None, 0, rows) for k, e in self.parts.items() if self.cuts[k] is None}
        for first in range(0, rows, step):
            last = min(rows, first + step)
            tensors = dict(whole)
            for key, entry in self.parts.items():
                if self.cuts[key] is not None:
                    tensors[key] = _read(entry, self.cuts[key], first, last)
            if "weight_shape" in self.parts:
                tensors["weight_shape"] = np.array([last - first, cols], np.int64)
            values = self.decode(tensors)
            if values.shape != (last - first, *inner):
                raise QuantcalcError(f"'{shortened(self.name, 60)}': rows {first}..{last} decode "
                                     f"to shape {values.shape}, not {(last - first, *inner)}",
                                     "file")
            yield first, values, tensors


def find_layers(checkpoint, config) -> dict:
    """{weight name: StoredLayer} of the quantized layers among the checkpoint's tensors."""
    qconfig = quant_config.quantization_config(config)
    by_name = {e.name: e for e in checkpoint.tensors}
    layers = {}
    for entry in checkpoint.tensors:
        module, own = _layer_of(entry, by_name)
        if module is None:
            continue
        parts = {own: entry}
        parts.update({s: by_name[f"{module}.{s}"] for s in COMPANIONS
                      if f"{module}.{s}" in by_name})
        if own == "_blocks":
            parts["_scales"] = by_name[f"{module}_scales"]
        name = module if own == "_blocks" else f"{module}.weight"
        layer = StoredLayer(name, module, entry.dtype, parts=parts)
        try:
            _describe(layer, own, qconfig)
        except QuantcalcError as exc:
            layer.refusal = exc.message
        layers[layer.name] = layer
    return layers


def _layer_of(entry, by_name):
    """(module, own suffix) where `entry` holds a quantized layer's weight, else (None, None)."""
    module, _, suffix = entry.name.rpartition(".")
    if suffix == "weight_packed" and entry.dtype in ("I32", "U8"):
        return module, suffix
    if suffix == "qweight" and entry.dtype == "I32":
        return module, suffix
    if suffix == "weight" and entry.dtype in quant_config.FP8_KINDS:
        return module, suffix
    if suffix == "weight" and entry.dtype == "I8" and f"{module}.weight_scale" in by_name:
        return module, suffix
    if entry.name.endswith("_blocks") and entry.dtype == "U8" \
            and entry.name[:-len("_blocks")] + "_scales" in by_name:
        return entry.name[:-len("_blocks")], "_blocks"
    return None, None


def _describe(layer, own, qconfig):
    """Fill in the layer's scheme, shape, cuts and decoder (raises with the reason it cannot)."""
    parts, module = layer.parts, layer.module
    main = parts[own]
    if own == "_blocks":
        _mxfp4(layer, main, parts["_scales"])
        return
    if own == "qweight":
        scheme = quant_config.packed_scheme(module, own, qconfig)
        _packed(layer, scheme)
    elif own == "weight" and main.dtype in quant_config.FP8_KINDS \
            and quant_config.method_of(qconfig) != "compressed-tensors":
        scale = next((s for s in ("weight_scale_inv", "weight_scale") if s in parts), None)
        scheme = quant_config.fp8_scheme(module, main.dtype, scale, qconfig)
        _fp8(layer, scheme, main)
    else:
        kind = ("nvfp4-pack-quantized" if main.dtype == "U8" else "pack-quantized") \
            if own == "weight_packed" else \
            ("float-quantized" if main.dtype in quant_config.FP8_KINDS else "int-quantized")
        scheme = quant_config.compressed_scheme(module, kind, qconfig)
        _compressed(layer, scheme, own, main)
    layer.label = scheme.label
    for key, entry in parts.items():
        layer.cuts.setdefault(key, None)
        if entry.dtype not in SAFETENSORS_DTYPES and entry.dtype not in quant_config.FP8_KINDS:
            raise QuantcalcError(f"'{shortened(entry.name, 60)}' holds {entry.dtype} values; "
                                 f"{layer.label} stores no such part", "file")


def _mxfp4(layer, blocks, scales):
    """gpt-oss MXFP4: (experts,) rows, groups, 16 bytes; the weight in transformers' layout
    (formats/stored/mxfp4.py): (experts, groups x 32, rows), or (rows, groups x 32)."""
    shape = tuple(int(n) for n in blocks.shape)
    if len(shape) not in (3, 4) or shape[-1] != 16 or tuple(scales.shape) != shape[:-1] \
            or blocks.dtype != "U8" or scales.dtype != "U8":
        raise QuantcalcError(f"'{shortened(layer.module, 60)}': MXFP4 blocks of shape "
                             f"{list(shape)} ({blocks.dtype}) and scales of shape "
                             f"{list(scales.shape)} ({scales.dtype}) are not gpt-oss's layout "
                             f"(..., rows, groups, 16) U8 with (..., rows, groups) U8", "file")
    columns = shape[-2] * 32
    layer.shape = (shape[0], columns, shape[1]) if len(shape) == 4 else (shape[0], columns)
    layer.cuts.update(_blocks=ROWS, _scales=ROWS)
    layer.label = "MXFP4 (gpt-oss: E2M1, E8M0 scale per 32)"
    layer.method = "mxfp4"
    for key, entry in layer.parts.items():
        layer.cuts.setdefault(key, None)


def _fp8(layer, scheme, weight):
    args, rows, cols = scheme.args, *_two_d(weight)
    layer.shape = (rows, cols)
    layer.cuts["weight"] = ROWS
    scale = layer.parts.get(args["scale"]) if args["scale"] else None
    layer.method, layer.args = "fp8", dict(args)
    if scale is None:
        return
    if args["scale"] == "weight_scale_inv":
        block = args["block"] or tile((rows, cols), scale.shape)
        if block is None:
            raise QuantcalcError(f"'{shortened(scale.name, 60)}' of shape {list(scale.shape)} "
                                 f"does not tile the {rows}x{cols} weight", "file")
        layer.cuts["weight_scale_inv"], layer.align = (0, 1, block[0]), block[0]
        layer.method, layer.args["block"] = "fp8-block", block
        return
    layer.cuts["weight_scale"] = None if scale.count == 1 else ROWS
    layer.method = "fp8-scaled"


def _compressed(layer, scheme, own, main):
    args, fmt = scheme.args["args"], scheme.args["format"]
    parts, cuts = layer.parts, layer.cuts
    if own == "weight_packed" and main.dtype == "I32":
        shape_entry = parts.get("weight_shape")
        if shape_entry is None or shape_entry.count != 2:
            raise QuantcalcError(f"'{shortened(layer.module, 60)}' has no weight_shape of two "
                                 f"numbers beside weight_packed", "file")
        rows, cols = (int(n) for n in _read(shape_entry, None, 0, 1).reshape(-1))
    elif own == "weight_packed":
        rows, cols = main.shape[0], 2 * main.shape[-1]
    else:
        rows, cols = _two_d(main)
    layer.shape = (rows, cols)
    cuts[own] = ROWS
    block = args.block_structure[0] if args.strategy == "block" else 1
    scale_cut = None if args.strategy == "tensor" else (0, 1, block)
    cuts["weight_scale"] = scale_cut
    cuts["weight_zero_point"] = scale_cut
    zero = parts.get("weight_zero_point")
    packed_zero = own == "weight_packed" and zero is not None and zero.dtype == "I32" \
        and args.strategy in ("channel", "group")
    if packed_zero:
        cuts["weight_zero_point"] = (0, args.num_bits, 32)
    layer.align = math.lcm(block, 32 if packed_zero else 1)
    layer.method, layer.args = "compressed-tensors", {"args": args, "format": fmt}


def _packed(layer, scheme):
    args, parts = scheme.args, layer.parts
    qweight = parts["qweight"]
    if len(qweight.shape) != 2:
        raise QuantcalcError(f"'{shortened(qweight.name, 60)}' has shape {list(qweight.shape)}; "
                             f"a packed layer is 2-D", "file")
    bits = args["bits"]
    if isinstance(bits, bool) or not isinstance(bits, int) or bits not in (2, 3, 4, 8):
        raise QuantcalcError(f"config.json's bits is {shortened(str(bits), 20)}; GPTQ/AWQ "
                             f"layers hold 2, 3, 4 or 8 bits", "file")
    if scheme.method == "awq":
        layer.shape = (qweight.shape[1] * 32 // bits, qweight.shape[0])
        per_word = 32 // bits
        layer.cuts.update(qweight=(1, 1, per_word), qzeros=(1, 1, per_word), scales=(1, 1, 1))
        layer.align = per_word
        layer.method, layer.args = "awq", dict(args)
        return
    g_idx = parts.get("g_idx")
    columns = g_idx.count if g_idx is not None else qweight.shape[0] * 32 // bits
    layer.shape = (qweight.shape[1], columns)
    layer.cuts.update(qweight=(1, 1, 1), scales=(1, 1, 1), qzeros=(1, bits, 32))
    layer.align = 32
    layer.method, layer.args = "gptq", dict(args)


def _two_d(entry):
    if len(entry.shape) != 2:
        raise QuantcalcError(f"'{shortened(entry.name, 60)}' has shape {list(entry.shape)}; "
                             f"quantcalc reads 2-D quantized weights", "tensor")
    return int(entry.shape[0]), int(entry.shape[1])


def _dtype(entry):
    return np.dtype(np.uint8) if entry.dtype in quant_config.FP8_KINDS \
        else SAFETENSORS_DTYPES[entry.dtype]


def _read(entry, cut, first, last) -> np.ndarray:
    """The part of `entry` that weight rows first..last need (`cut`), as numbers: F8 as its
    bytes, BF16 widened to float32."""
    dtype, shape = _dtype(entry), tuple(int(n) for n in entry.shape)
    if entry.nbytes != entry.count * dtype.itemsize:
        raise QuantcalcError(f"{os.path.basename(entry.path)}: '{shortened(entry.name, 60)}' "
                             f"has {entry.nbytes:,} bytes for {entry.count:,} values", "file")
    if cut is None or not shape:
        raw = _bytes(entry, [(0, entry.nbytes)])
        values = raw.view(dtype).reshape(shape)
    else:
        axis, num, den = cut
        start = first * num // den
        stop = min(shape[axis], -(-last * num // den))
        if axis >= len(shape) or start >= stop:
            raise QuantcalcError(f"'{shortened(entry.name, 60)}' of shape {list(shape)} has no "
                                 f"part for weight rows {first}..{last}", "file")
        item = dtype.itemsize
        inner = math.prod(shape[axis + 1:]) * item
        outer = math.prod(shape[:axis])
        spans = [(o * shape[axis] * inner + start * inner, (stop - start) * inner)
                 for o in range(outer)]
        raw = _bytes(entry, spans)
        values = raw.view(dtype).reshape(*shape[:axis], stop - start, *shape[axis + 1:])
    return bf16_to_float32(values) if entry.dtype == "BF16" else values


def _bytes(entry, spans):
    """The bytes of `entry` at each (offset within it, size) of `spans`, one after another."""
    out = np.empty(sum(size for _, size in spans), np.uint8)
    at = 0
    with file_parts.open_file(entry.path) as stream:
        for offset, size in spans:
            stream.seek(entry.offset + offset)
            out[at:at + size] = read_exactly(stream, size, entry)
            at += size
    return out


