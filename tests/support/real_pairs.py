"""Original + quantized pairs of one REAL model, each quantized side made with its format's own
tools from the real all-MiniLM-L6-v2 (float32 BERT, tests/support/corpus.py), with an
independent dequantization of every quantized tensor (tests/realfiles/test_audit_real_pairs.py,
bench/audit_real_pairs.py):

- GGUF written by gguf-py's GGUFWriter with the names gguf-py's TensorNameMap gives BERT, every
  matrix quantized by ggml itself (libggml's ggml_quantize_chunk, tests/support/
  ggml_reference.py); K types fall back for rows not a multiple of 256 as llama-quantize does
  (Q4_K -> Q5_0, Q6_K -> Q8_0); independent decoding: gguf-py's `dequantize`;
- compressed-tensors W4A16 (int4 group 128, pack-quantized) and W8A8-int (int8 per channel,
  int-quantized) of every Linear, by compressed-tensors' own observer arithmetic and compressor;
  independent decoding: its own decompressor;
- FP8 E4M3 per tensor (weight_scale = amax / 448) and in DeepSeek-V3's 128x128 tiles
  (weight_scale_inv), cast by torch; independent decoding: torch (codes.float() * scale).
"""

import json
import math
import shutil
from pathlib import Path

import numpy as np

from tests.support import corpus

FORMATS = ("Q8_0", "Q4_K", "Q6_K", "W4A16", "W8A8-int", "FP8 per tensor", "FP8 128x128")
GGUF_FALLBACK = {"q4_K": "q5_0", "q6_K": "q8_0"}  # llama-quant.cpp, ncols % 256 != 0
W4A16 = dict(num_bits=4, type="int", symmetric=True, strategy="group", group_size=128)
W8A8 = dict(num_bits=8, type="int", symmetric=True, strategy="channel")


def original_folder():
    """The real MiniLM's folder (model.safetensors + config.json), or a skip."""
    return corpus.file_or_skip("minilm-safetensors").parent


def original_arrays(folder):
    from safetensors.numpy import load_file
    return load_file(str(Path(folder) / "model.safetensors"))


def linear_names(arrays):
    """The Linear layers' weights (what llm-compressor's "Linear" target quantizes)."""
    return [n for n, x in arrays.items() if x.ndim == 2 and n.endswith(
        ("dense.weight", "query.weight", "key.weight", "value.weight"))]


def make(kind, folder, original):
    """The quantized side of format `kind` in `folder`; {quantized tensor name: reference
    float32 values} by the independent dequantization."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = original_arrays(original)
    config = json.loads((Path(original) / "config.json").read_text())
    if kind in ("Q8_0", "Q4_K", "Q6_K"):
        return _gguf(folder / f"minilm-{kind}.gguf", arrays, config, kind)
    if kind in ("W4A16", "W8A8-int"):
        return _compressed(folder, arrays, config, kind)
    return _fp8(folder, arrays, config, kind)


def _gguf(path, arrays, config, kind):
    import gguf
    from tests.support import ggml_reference as ggml

    blocks = config["num_hidden_layers"]
    names = gguf.TensorNameMap(gguf.MODEL_ARCH.BERT, blocks)
    writer = gguf.GGUFWriter(str(path), "bert")
    writer.add_block_count(blocks)
    writer.add_head_count(config["num_attention_heads"])
    writer.add_embedding_length(config["hidden_size"])
    wanted = kind.lower().replace("_k", "_K")
    for hf_name, x in arrays.items():
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None or x.dtype != np.float32:
            continue
        if x.ndim == 1 or x.shape[-1] % 32:
            writer.add_tensor(name, x)
            continue
        ggml_type = wanted if x.shape[-1] % 256 == 0 else GGUF_FALLBACK.get(wanted, wanted)
        raw = ggml.block_bytes(ggml_type, x.reshape(-1, x.shape[-1])).reshape(x.shape[0], -1)
        writer.add_tensor(name, raw, raw_shape=raw.shape,
                          raw_dtype=gguf.GGMLQuantizationType[ggml_type.upper()])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    reader = gguf.GGUFReader(str(path))
    return {t.name: np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), np.float32)
            .reshape(tuple(reversed(t.shape.tolist())))
            for t in reader.tensors if t.tensor_type not in (0, 1)}


def _write(folder, tensors, config, quantization_config):
    import torch  # noqa: F401 - safetensors.torch needs it
    from safetensors.torch import save_file
    save_file({n: t.contiguous() for n, t in tensors.items()}, str(folder / "model.safetensors"))
    config = dict(config)
    config["quantization_config"] = quantization_config
    (folder / "config.json").write_text(json.dumps(config))


def _compressed(folder, arrays, config, kind):
    import torch
    from tests.formats.stored.test_stored_compressed_tensors import compress

    args, fmt = (W4A16, "pack-quantized") if kind == "W4A16" else (W8A8, "int-quantized")
    tensors, reference = {}, {}
    linear = set(linear_names(arrays))
    for name, x in arrays.items():
        if name not in linear:
            tensors[name] = torch.from_numpy(np.ascontiguousarray(x))
            continue
        module = name.rsplit(".", 1)[0]
        stored, decompressed = compress(fmt, args, torch.from_numpy(x.copy()))
        for key, value in stored.items():
            tensors[f"{module}.{key}"] = value
        reference[name] = decompressed.float().numpy()
    qconfig = {"quant_method": "compressed-tensors", "format": fmt, "ignore": [],
               "quantization_status": "compressed",
               "config_groups": {"group_0": {"targets": ["Linear"], "weights": args}}}
    _write(folder, tensors, config, qconfig)
    return reference


def _fp8(folder, arrays, config, kind):
    """torch's cast to float8_e4m3fn of x / (amax / 448), per tensor or per 128x128 tile."""
    import torch

    tensors, reference = {}, {}
    linear = set(linear_names(arrays))
    tiled = kind == "FP8 128x128"
    for name, x in arrays.items():
        if name not in linear:
            tensors[name] = torch.from_numpy(np.ascontiguousarray(x))
            continue
        weight = torch.from_numpy(x.copy())
        if tiled:
            rows, cols = weight.shape
            grid = (math.ceil(rows / 128), math.ceil(cols / 128))
            scale = torch.empty(grid, dtype=torch.float32)
            codes = torch.empty(weight.shape, dtype=torch.float8_e4m3fn)
            back = torch.empty(weight.shape, dtype=torch.float32)
            for i in range(grid[0]):
                for j in range(grid[1]):
                    part = weight[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128]
                    s = part.abs().amax() / 448.0
                    scale[i, j] = s
                    q = (part / s).to(torch.float8_e4m3fn)
                    codes[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128] = q
                    back[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128] = q.float() * s
            tensors[name], tensors[name + "_scale_inv"] = codes, scale
        else:
            scale = weight.abs().amax() / 448.0
            codes = (weight / scale).to(torch.float8_e4m3fn)
            back = codes.float() * scale
            tensors[name], tensors[name + "_scale"] = codes, scale.reshape(1)
        reference[name] = back.numpy()
    qconfig = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic"}
    if tiled:
        qconfig["weight_block_size"] = [128, 128]
    _write(folder, tensors, config, qconfig)
    return reference


def decoded(quantized_folder):
    """{quantized tensor name: quantcalc's decoding} of every quantized tensor, read as the
    audit reads it (formats/ggml for a GGUF, readers/stored_layers for safetensors)."""
    from quantcalc.audit import pairing, sides
    side = pairing.open_side([str(quantized_folder)], "quantized")
    out = {}
    if side.gguf:
        for entry in side.checkpoint.tensors:
            if entry.dtype in ("F32", "F16"):
                continue
            parts = [v for _, v, _ in sides._gguf_slabs(entry, 1 << 30)]
            out[entry.name] = np.concatenate(parts).reshape(entry.shape)
    else:
        for name, layer in side.layers.items():
            out[name] = np.concatenate([v for _, v in layer.slabs(1 << 30)])
    return out


def bit_exact(ours, reference) -> bool:
    """Every tensor's float32 bits equal (NaN compared as NaN)."""
    if set(ours) != set(reference):
        return False
    return all(np.array_equal(np.asarray(ours[n], np.float32).view(np.uint32),
                              np.asarray(reference[n], np.float32).view(np.uint32))
               for n in reference)


def copy_original(original, folder):
    """The original folder's two files, copied (so a test's folder holds both sides)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "config.json"):
        shutil.copyfile(Path(original) / name, folder / name)
    return folder
