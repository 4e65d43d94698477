"""Original and quantized checkpoints for the audit's tests, made the way the real tools make them
and sharing no code with quantcalc's audit:

- a small Llama in Hugging Face's layout (safetensors + config.json), its GGUF written by
  gguf-py's GGUFWriter with convert_hf_to_gguf.py's steps: names through gguf-py's own
  TensorNameMap, q/k rows through LlamaModel.permute, head counts in the metadata, each tensor
  quantized by ggml itself (libggml's ggml_quantize_chunk), with or without an imatrix;
- importance matrices in llama.cpp's GGUF imatrix format.
"""

import json
from pathlib import Path

import numpy as np

from tests.support import checkpoints
from tests.support import ggml_reference as ggml

gguf = __import__("pytest").importorskip("gguf", reason="gguf-py writes the GGUF side")


def llama_config(layers=2, hidden=256, heads=4, kv_heads=2, ffn=512, vocab=256):
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "num_hidden_layers": layers, "hidden_size": hidden, "intermediate_size": ffn,
            "num_attention_heads": heads, "num_key_value_heads": kv_heads,
            "vocab_size": vocab, "rms_norm_eps": 1e-5, "torch_dtype": "float32"}


def hf_llama(folder, seed=0, dtype="F32", **sizes):
    """model.safetensors + config.json of a small Llama; (arrays as float32, config)."""
    config = llama_config(**sizes)
    kv = config["hidden_size"] // config["num_attention_heads"] * config["num_key_value_heads"]
    tensors = checkpoints.llama_tensors(layers=config["num_hidden_layers"],
                                        hidden=config["hidden_size"],
                                        ffn=config["intermediate_size"],
                                        vocab=config["vocab_size"], kv=kv)
    arrays = checkpoints.make_arrays(tensors, seed=seed)
    if dtype == "BF16":  # the values the file holds, as float32
        arrays = {n: (checkpoints.to_bf16_bits(x).astype(np.uint32) << 16).view(np.float32)
                  for n, x in arrays.items()}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    checkpoints.write_safetensors(folder / "model.safetensors", arrays, dtype)
    (folder / "config.json").write_text(json.dumps(config))
    return arrays, config


def permute(weights, n_head, n_head_kv):
    """convert_hf_to_gguf.py LlamaModel.permute, in numpy."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def gguf_tensors(arrays, config, permuted=True):
    """{GGUF name: float32 array} as convert_hf_to_gguf.py writes a Llama: gguf-py's names,
    q and k permuted (permuted=False: as a converter that forgets to)."""
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config["num_hidden_layers"])
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
    out = {}
    for name, x in arrays.items():
        if permuted and name.endswith("q_proj.weight"):
            x = permute(x, heads, heads)
        if permuted and name.endswith("k_proj.weight"):
            x = permute(x, heads, kv)
        out[names.get_name(name, try_suffixes=(".weight", ".bias"))] = x
    return out


def write_gguf(path, tensors, config, types, imatrix=None):
    """A llama GGUF of `tensors` (GGUF names): types[name] a ggml type name of
    ggml_reference ('q4_K', ...) or 'F32' / 'F16'; 1-D tensors F32. `imatrix`: GGUF name ->
    importance weights ggml quantizes that tensor with."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_embedding_length(config["hidden_size"])
    for name, x in tensors.items():
        kind = "F32" if x.ndim == 1 else types.get(name, "F32")
        if kind == "F32":
            writer.add_tensor(name, x.astype(np.float32))
        elif kind == "F16":
            writer.add_tensor(name, x.astype(np.float16))
        else:
            weights = None if imatrix is None else imatrix.get(name)
            rows = x.astype(np.float32).reshape(-1, x.shape[-1])
            raw = ggml.block_bytes(kind, rows, weights).reshape(*x.shape[:-1], -1)
            number = gguf.GGMLQuantizationType[kind.upper()]
            writer.add_tensor(name, raw, raw_shape=raw.shape, raw_dtype=number)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def write_imatrix(path, weights):
    """An imatrix in llama.cpp's GGUF format whose weights (sums over counts of 1) are
    `weights` (GGUF name -> float32 per column)."""
    writer = gguf.GGUFWriter(str(path), "imatrix")
    writer.add_uint32("imatrix.chunk_count", 1)
    writer.add_uint32("imatrix.chunk_size", 512)
    writer.add_array("imatrix.datasets", ["test"])
    for name, values in weights.items():
        writer.add_tensor(f"{name}.in_sum2", np.asarray(values, np.float32))
        writer.add_tensor(f"{name}.counts", np.ones(1, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def importance_for(tensors, seed=5):
    """Positive importance weights per column for every matrix of `tensors`."""
    rng = np.random.default_rng(seed)
    return {n: rng.uniform(0.05, 20, x.shape[-1]).astype(np.float32)
            for n, x in tensors.items() if x.ndim == 2}


def dequantized(path):
    """{name: float32 values} of a GGUF as gguf-py reads and dequantizes it (the independent
    reference for the audit's decoding)."""
    reader = gguf.GGUFReader(str(path))
    out = {}
    for t in reader.tensors:
        values = gguf.quants.dequantize(t.data, t.tensor_type)
        out[t.name] = np.asarray(values, np.float32).reshape(tuple(reversed(t.shape.tolist())))
    return out


def sqnr_db(original, quantized):
    """10 log10(sum x^2 / sum e^2) in float64: the reference SQNR."""
    x = np.asarray(original, np.float64)
    e = np.asarray(quantized, np.float64) - x
    with np.errstate(divide="ignore"):
        return 10 * np.log10(np.sum(x * x) / np.sum(e * e))
