"""Which tensor of the quantized checkpoint is which tensor of the original.

Each side is a checkpoint (a file, shards, an index or a folder) with what it says about itself:
a GGUF's metadata, the config.json beside safetensors (its quantization_config says how the
quantized layers are stored: readers/stored_layers.py). Names pair directly between two
checkpoints of the same kind; between Hugging Face and GGUF names through gguf-py's
TensorNameMap for the architecture (schema/gguf_names.py), with the rope permutation of q/k
undone (rope.py), and MoE experts that GGUF stacks into one 3-D tensor paired one by one
(`blk.0.ffn_gate_exps.weight[3]` with `model.layers.0.mlp.experts.3.gate_proj.weight`).

q, k and v fused on one side and separate on the other are compared part by part (fused.py).
A tensor on one side only, a shape mismatch, a transposed layout or a fused tensor that cannot be
cut is a Pair with its `reason`, and never gets an SQNR.
"""

import dataclasses
import math
import re
from dataclasses import field

from quantcalc.audit import fused, rope
from quantcalc.errors import QuantcalcError
from quantcalc.readers import checkpoint as checkpoints, model_config, stored_layers
from quantcalc.readers import stored_safetensors
from quantcalc.readers.slab_reader import refusal as slab_refusal
from quantcalc.readers.stored_layers import StoredLayer
from quantcalc.records import record
from quantcalc.schema import gguf_names

EXPERT = re.compile(r"\.experts\.(\d+)\.")


@record
class Side:
    role: str                 # "original" or "quantized", for messages
    paths: list
    checkpoint: object
    config: dict = None       # config.json beside a safetensors checkpoint
    metadata: dict = None     # the first GGUF's metadata
    layers: dict = field(default_factory=dict)  # quantized safetensors layers by weight name

    @property
    def gguf(self) -> bool:
        return all(e.ggml_type is not None for e in self.checkpoint.tensors)


def open_side(paths, role) -> Side:
    """The checkpoint at `paths` with its config.json or GGUF metadata (headers only)."""
    try:
        model = checkpoints.open_checkpoint(list(paths))
    except QuantcalcError as exc:
        raise QuantcalcError(f"{role}: {exc.message}", role) from None
    side = Side(role, [str(p) for p in paths], model)
    gguf_files = [path for path, _ in model.files if path.lower().endswith(".gguf")]
    if gguf_files:
        side.metadata = model_config.gguf_metadata(gguf_files[0]) or {}
    else:
        side.config, _ = model_config.find_config(paths, model)
        if role == "quantized":
            side.layers = stored_layers.find_layers(model, side.config)
    return side


@record
class Pair:
    """One row of the audit: the quantized side's tensor `name` and the original's."""

    name: str
    original_name: str = None
    original: object = None    # TensorEntry
    quantized: object = None   # TensorEntry (GGUF or plain) or StoredLayer
    rope: tuple = None         # (heads, side whose rows are permuted into GGUF order)
    gguf_name: str = None      # the name an importance matrix knows it by
    expert: int = None         # its expert in a stacked GGUF tensor (the imatrix's too)
    reason: str = None         # why it is not measured
    notes: list = field(default_factory=list)

    @property
    def shape(self) -> tuple:
        held = self.quantized if self.quantized is not None else self.original
        return tuple(int(n) for n in held.shape)

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    @property
    def side(self) -> str:
        return "both" if self.quantized is not None and self.original is not None else \
            "quantized" if self.quantized is not None else "original"


def pair_sides(original: Side, quantized: Side):
    """(pairs in the quantized file's order, then the original's tensors it lacks; the
    architecture and where it was read)."""
    architecture, blocks, source = _architecture(original, quantized)
    mapper = gguf_names.name_map(architecture, blocks) \
        if architecture in gguf_names.ARCHITECTURES else None
    q_items = _items(quantized)
    o_items = _items(original)
    cross = original.gguf != quantized.gguf
    gguf_side = quantized if quantized.gguf else original
    heads = _head_counts(gguf_side.metadata, architecture, original.config or quantized.config)
    o_by_key = {}
    for name, entry in o_items:
        key = _key(name, mapper) if cross and not original.gguf else name
        if key is not None:
            o_by_key.setdefault(key, (name, entry))
    pairs, used = [], set()
    q_keys = [(name, held, _key(name, mapper) if cross and not quantized.gguf else name)
              for name, held in q_items]
    q_by_key = {key: held for _, held, key in q_keys if key is not None}
    for name, held, key in q_keys:
        found = o_by_key.get(key) if key is not None else None
        gguf_name = _gguf_name(name, key, quantized.gguf, original.gguf)
        pair = Pair(name, quantized=held, gguf_name=gguf_name, expert=_expert_of(name))
        if found is None and key is not None:
            split = _split_fused(name, held, key, gguf_name, o_by_key, q_by_key)
            if split:
                for part, original_found in split:
                    used.add(original_found)
                    _check(part, architecture if cross else None, heads, quantized.gguf)
                    pairs.append(part)
                continue
        if found is not None:
            used.add(found[0])
            pair.original_name, pair.original = found
            _check(pair, architecture if cross else None, heads, quantized.gguf)
        else:
            pair.reason = _only_quantized_reason(name, held, mapper is None and cross)
        pairs.append(pair)
    for name, entry in o_items:
        if name not in used:
            pairs.append(Pair(name, original_name=name, original=entry,
                              reason="only in the original: the quantized checkpoint has no "
                                     "tensor of this name" + _hint(name)))
    return pairs, {"architecture": architecture, "source": source}


def _split_fused(name, held, key, gguf_name, o_by_key, q_by_key):
    """[(Pair, the original's name it uses)] where one side holds q, k and v fused and the other
    separate (fused.py), else None."""
    part_keys = fused.split_key(key)
    if part_keys and all(k in o_by_key for k in part_keys):  # the quantized side is fused
        ranges = fused.layout(held, [o_by_key[k][1] for k in part_keys])
        if ranges is None:
            return None
        out = []
        for label, k, (first, count) in zip(fused.PARTS, part_keys, ranges):
            o_name, o_entry = o_by_key[k]
            part = Pair(f"{name}[{label}]", original_name=o_name, original=o_entry,
                        quantized=fused.rows(held, first, count, label), gguf_name=gguf_name)
            part.notes.append(f"the {label} rows {first}..{first + count} of the fused tensor")
            out.append((part, o_name))
        return out
    which = fused.fused_key(key)
    if which is None or which[0] not in o_by_key:  # the original is fused
        return None
    o_name, o_entry = o_by_key[which[0]]
    siblings = fused.split_key(which[0])
    ranges = fused.layout(o_entry, [q_by_key.get(k) for k in siblings])
    if ranges is None:
        return None
    first, count = ranges[fused.PARTS.index(which[1])]
    part = Pair(name, original_name=f"{o_name}[{which[1]}]",
                original=fused.rows(o_entry, first, count, which[1]), quantized=held,
                gguf_name=gguf_name)
    part.notes.append(f"against the {which[1]} rows {first}..{first + count} of the original's "
                      "fused tensor")
    return [(part, o_name)]


def _items(side):
    """(name, entry or StoredLayer) of every tensor a side holds, 3-D GGUF tensors as one item
    per expert, a quantized layer once (its scales and zero points are parts of it)."""
    parts = {e.name for layer in side.layers.values() for e in layer.parts.values()}
    items = [(name, layer) for name, layer in side.layers.items()]
    for entry in side.checkpoint.tensors:
        if entry.name in parts:
            continue
        if side.gguf and len(entry.shape) == 3 and entry.nbytes:
            items += [(f"{entry.name}[{e}]", _expert_slice(entry, e))
                      for e in range(int(entry.shape[0]))]
        else:
            items.append((entry.name, entry))
    order = {e.name: i for i, e in enumerate(side.checkpoint.tensors)}
    return sorted(items, key=lambda item: order.get(_first_part(item[1]), 0))


def _first_part(held):
    if isinstance(held, StoredLayer):
        return next(iter(held.parts.values())).name
    return held.name.split("[", 1)[0]


def _expert_slice(entry, expert):
    """Expert `expert` of a stacked GGUF tensor (experts, rows, columns): its own bytes."""
    per = entry.nbytes // int(entry.shape[0])
    return dataclasses.replace(entry, name=f"{entry.name}[{expert}]", shape=tuple(entry.shape[1:]),
                               offset=entry.offset + expert * per, nbytes=per)


def _expert_of(name):
    match = re.search(r"\[(\d+)\]$", name)
    return int(match.group(1)) if match else None


def _key(name, mapper):
    """The GGUF name of a Hugging Face name (an expert: the stacked tensor's name with [e])."""
    if mapper is None:
        return None
    match = EXPERT.search(name)
    if match:
        stacked = mapper.get(name[:match.start()] + ".experts." + name[match.end():])
        return None if stacked is None else f"{stacked}[{match.group(1)}]"
    return mapper.get(name)


def _gguf_name(name, key, quantized_gguf, original_gguf):
    """The GGUF name an importance matrix uses for the pair (without an expert's [e])."""
    gguf = name if quantized_gguf else key if original_gguf else None
    return None if gguf is None else gguf.split("[", 1)[0]


def _architecture(original, quantized):
    for side in (quantized, original):
        arch = (side.metadata or {}).get("general.architecture")
        if isinstance(arch, str) and arch:
            blocks = side.metadata.get(f"{arch}.block_count")
            return arch, blocks if isinstance(blocks, int) else None, \
                f"general.architecture of the {side.role} GGUF"
    for side in (original, quantized):
        arch, source = gguf_names.architecture_of_config(side.config)
        if arch is not None:
            return arch, gguf_names.block_count_of_config(side.config), \
                f"{source} ({side.role})"
    return None, None, None


def _head_counts(metadata, architecture, config):
    """(attention heads, key/value heads) from the GGUF's metadata, else config.json."""
    def number(value):
        if isinstance(value, list):  # per-layer counts: the permutation takes the layer's
            return value
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
            else None
    meta = metadata or {}
    heads = number(meta.get(f"{architecture}.attention.head_count"))
    kv = number(meta.get(f"{architecture}.attention.head_count_kv"))
    config = config or {}
    heads = heads or number(config.get("num_attention_heads", config.get("n_heads")))
    kv = kv or number(config.get("num_key_value_heads", config.get("n_kv_heads")))
    return heads, kv


def _check(pair, architecture, heads, quantized_gguf):
    """Set the pair's reason where it cannot be measured, and its rope permutation."""
    o_shape = tuple(int(n) for n in pair.original.shape)
    held = pair.quantized
    if isinstance(held, StoredLayer) and held.refusal:
        pair.reason = held.refusal
        return
    q_shape = tuple(int(n) for n in held.shape)
    if o_shape != q_shape:
        transposed = len(o_shape) == 2 and o_shape[::-1] == q_shape
        pair.reason = (f"transposed layout: the original is {_dims(o_shape)}, the quantized "
                       f"{_dims(q_shape)}; not paired" if transposed else
                       f"shape mismatch: the original is {_dims(o_shape)}, the quantized "
                       f"{_dims(q_shape)}")
        return
    unreadable = _unreadable(pair.original, "original") or \
        (None if isinstance(held, StoredLayer) else _unreadable(held, "quantized"))
    if unreadable:
        pair.reason = unreadable
        return
    hf_name = pair.original_name if quantized_gguf else pair.name
    kind = rope.which(architecture, hf_name) if architecture else None
    if kind is None:
        return
    count, count_kv = heads
    layer = re.search(r"\.(\d+)\.", hf_name)
    picked = [c[int(layer.group(1))] if isinstance(c, list) and layer and
              int(layer.group(1)) < len(c) else c for c in (count, count_kv)]
    n = rope.heads_for(kind, *[p if isinstance(p, int) else None for p in picked])
    if rope.gguf_order(int(o_shape[0]), n) is None:
        why = f"{o_shape[0]} rows do not split into {n} heads" if n else \
            "no head count in the GGUF or config.json"
        pair.notes.append(f"the rope permutation of {kind} was not undone: {why}")
        return
    pair.rope = (n, "original" if quantized_gguf else "quantized")
    pair.notes.append(f"rows reordered as convert_hf_to_gguf.py permutes {kind} "
                      f"({n} heads) before comparing")


def _unreadable(entry, role):
    """Why a side's tensor gives no values to compare, or None."""
    stored = getattr(entry, "stored", None)
    if stored is not None:
        if role == "original":
            return f"the original is itself stored as {stored.label}"
        return stored_safetensors.refusal(entry)
    if entry.ggml_type is None and not entry.readable:
        return f"the {role} holds {entry.dtype} values, not floats"
    reason = slab_refusal(entry)
    return f"the {role}: {reason}" if reason else None


def _only_quantized_reason(name, held, unmapped):
    if unmapped:
        return ("only in the quantized file: the architecture is unknown, so Hugging Face "
                "names cannot be matched to GGUF names")
    return "only in the quantized file: the original has no tensor of this name" + _hint(name)


def _hint(name):
    if "qkv" in name or "query_key_value" in name:
        return (" (q, k and v fused in one tensor on one side only, and the other side's q, k "
                "and v do not stack into its shape: not cut to compare)")
    if "gate_up" in name:
        return " (gate and up fused in one tensor on one side only)"
    if "experts" in name or "_exps" in name:
        return " (MoE experts stored differently on the two sides)"
    return ""


def _dims(shape):
    return "x".join(str(n) for n in shape)
