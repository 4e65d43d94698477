"""Checkpoints the tests generate: Llama-style and BERT-style tensor lists with realistic value
distributions (normal weights, heavy-tailed ones, outlier input channels, norms near 1), written
as safetensors (one file or shards with an index), GGUF with mixed types, and .npz.

Shared by the unit tests, the e2e tests and the benchmarks (`python tests/checkpoints.py OUT`).
"""

import json
import struct
import sys
from pathlib import Path

import numpy as np


def llama_tensors(layers=2, hidden=256, ffn=512, vocab=512, kv=None, gguf_names=False):
    """[(name, shape)] of a small Llama: embeddings, per layer q/k/v/o, gate/up/down, two norms,
    the final norm and the output head (Hugging Face names, or GGUF's with gguf_names)."""
    kv = kv or hidden // 2
    if gguf_names:
        out = [("token_embd.weight", (vocab, hidden))]
        for i in range(layers):
            out += [(f"blk.{i}.attn_norm.weight", (hidden,)),
                    (f"blk.{i}.attn_q.weight", (hidden, hidden)),
                    (f"blk.{i}.attn_k.weight", (kv, hidden)),
                    (f"blk.{i}.attn_v.weight", (kv, hidden)),
                    (f"blk.{i}.attn_output.weight", (hidden, hidden)),
                    (f"blk.{i}.ffn_norm.weight", (hidden,)),
                    (f"blk.{i}.ffn_gate.weight", (ffn, hidden)),
                    (f"blk.{i}.ffn_up.weight", (ffn, hidden)),
                    (f"blk.{i}.ffn_down.weight", (hidden, ffn))]
        return out + [("output_norm.weight", (hidden,)), ("output.weight", (vocab, hidden))]
    out = [("model.embed_tokens.weight", (vocab, hidden))]
    for i in range(layers):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", (hidden,)),
                (p + "self_attn.q_proj.weight", (hidden, hidden)),
                (p + "self_attn.k_proj.weight", (kv, hidden)),
                (p + "self_attn.v_proj.weight", (kv, hidden)),
                (p + "self_attn.o_proj.weight", (hidden, hidden)),
                (p + "post_attention_layernorm.weight", (hidden,)),
                (p + "mlp.gate_proj.weight", (ffn, hidden)),
                (p + "mlp.up_proj.weight", (ffn, hidden)),
                (p + "mlp.down_proj.weight", (hidden, ffn))]
    return out + [("model.norm.weight", (hidden,)), ("lm_head.weight", (vocab, hidden))]


def bert_tensors(layers=2, hidden=128, ffn=256, vocab=300):
    out = [("bert.embeddings.word_embeddings.weight", (vocab, hidden)),
           ("bert.embeddings.LayerNorm.weight", (hidden,))]
    for i in range(layers):
        p = f"bert.encoder.layer.{i}."
        out += [(p + "attention.self.query.weight", (hidden, hidden)),
                (p + "attention.self.query.bias", (hidden,)),
                (p + "attention.self.key.weight", (hidden, hidden)),
                (p + "attention.self.value.weight", (hidden, hidden)),
                (p + "attention.output.dense.weight", (hidden, hidden)),
                (p + "attention.output.LayerNorm.weight", (hidden,)),
                (p + "intermediate.dense.weight", (ffn, hidden)),
                (p + "output.dense.weight", (hidden, ffn))]
    return out


def values_for(name, shape, rng):
    """Weights of the kind the name suggests: norms near 1; down projections heavy-tailed;
    q/k with a few outlier input channels (the LLM.int8() observation); others normal."""
    if len(shape) == 1:
        return (1.0 + 0.05 * rng.standard_normal(shape)).astype(np.float32)
    fan_in = shape[-1]
    x = rng.standard_normal(shape) / np.sqrt(fan_in)
    if "down" in name or "output.dense" in name:
        x = rng.standard_t(3, shape) / np.sqrt(fan_in)
    if any(k in name for k in ("q_proj", "k_proj", "attn_q", "attn_k", "query", "key")):
        columns = rng.choice(fan_in, max(1, fan_in // 64), replace=False)
        x[..., columns] *= 20.0
    return x.astype(np.float32)


def make_arrays(tensors, seed=0):
    rng = np.random.default_rng(seed)
    return {name: values_for(name, shape, rng) for name, shape in tensors}


def to_bf16_bits(x):
    """float32 -> bfloat16 bit patterns, round to nearest even (as torch does)."""
    bits = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def write_safetensors(path, arrays, dtype="F32"):
    """A .safetensors file; dtype F32, F16 or BF16 for every tensor."""
    header, blobs, offset = {}, [], 0
    for name, x in arrays.items():
        if x.dtype.kind == "i":  # position ids and the like: stored as they are
            raw = x.astype("<i4").tobytes()
            header[name] = {"dtype": "I32", "shape": list(x.shape),
                            "data_offsets": [offset, offset + len(raw)]}
            blobs.append(raw)
            offset += len(raw)
            continue
        raw = {"F32": lambda a: a.astype("<f4"), "F16": lambda a: a.astype("<f2"),
               "BF16": to_bf16_bits}[dtype](x).tobytes()
        header[name] = {"dtype": dtype, "shape": list(x.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text)
        for raw in blobs:
            out.write(raw)


def write_sharded(folder, arrays, shards=3, dtype="F32"):
    """model-0000i-of-0000n.safetensors plus model.safetensors.index.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = list(arrays)
    weight_map = {}
    for i in range(shards):
        part = names[i::shards]
        file = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        write_safetensors(folder / file, {n: arrays[n] for n in part}, dtype)
        weight_map.update({n: file for n in part})
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))
    return folder / "model.safetensors.index.json"


def write_gguf(path, arrays, types=None):
    """A GGUF through llama.cpp's gguf package: `types` maps names to 'F32', 'F16', 'Q8_0',
    'Q4_0' (default F32; 1-D tensors stay F32)."""
    import gguf
    from gguf.constants import GGMLQuantizationType as T

    writer = gguf.GGUFWriter(str(path), "llama")
    for name, x in arrays.items():
        kind = (types or {}).get(name, "F32")
        if kind == "F32":
            writer.add_tensor(name, x.astype(np.float32))
        elif kind == "F16":
            writer.add_tensor(name, x.astype(np.float16))
        else:
            q = gguf.quants.quantize(x.astype(np.float32), T[kind])
            writer.add_tensor(name, q, raw_shape=q.shape, raw_dtype=T[kind])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "checkpoint")
    write_sharded(out, make_arrays(llama_tensors(layers=4)), shards=2, dtype="BF16")
    print(out)


def small_llama(folder, seed, layers=1):
    """A small Llama-style checkpoint in `folder`/model.safetensors whose rows of 256 every
    K-quant takes; (its path, its tensor names)."""
    arrays = make_arrays(llama_tensors(layers=layers, hidden=256, ffn=512, vocab=256), seed=seed)
    write_safetensors(folder / "model.safetensors", arrays)
    return folder / "model.safetensors", list(arrays)
