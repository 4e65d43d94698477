"""Quantized safetensors checkpoints for the audit's tests, each made with its format's own tools
next to a Hugging Face original, with the tools' own dequantization as the reference:

- FP8 block-scaled as DeepSeek-V3 stores it: amax / 448 per 128x128 tile, cast by ml_dtypes;
  reference DeepSeek's weight_dequant (tests/formats/stored/test_stored_fp8.py);
- compressed-tensors (0.20.1): its own quantizer and compressors
  (tests/formats/stored/test_stored_compressed_tensors.py's `compress`), reference its own
  decompressor;
- GPTQ and AWQ: AutoGPTQ's and AutoAWQ's quantizers and packing transcribed in
  tests/support/gptq_awq_reference.py, reference their own dequantization.

Files are written by the safetensors library (safetensors.torch.save_file)."""

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch (CPU) runs the formats' own tools")
ml_dtypes = pytest.importorskip("ml_dtypes")
from safetensors.torch import save_file  # noqa: E402

SHAPES = {  # a small Llama block whose matrices the formats all take; 300 rows: short tiles
    "model.embed_tokens.weight": (256, 256),
    "model.layers.0.input_layernorm.weight": (256,),
    "model.layers.0.self_attn.q_proj.weight": (256, 256),
    "model.layers.0.self_attn.k_proj.weight": (128, 256),
    "model.layers.0.self_attn.v_proj.weight": (128, 256),
    "model.layers.0.self_attn.o_proj.weight": (256, 256),
    "model.layers.0.mlp.gate_proj.weight": (384, 256),
    "model.layers.0.mlp.up_proj.weight": (384, 256),
    "model.layers.0.mlp.down_proj.weight": (256, 384),
    "model.norm.weight": (256,),
    "lm_head.weight": (256, 256),
}
CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 1,
          "hidden_size": 256, "num_attention_heads": 4, "num_key_value_heads": 2}


def original(folder, seed=0, shapes=SHAPES):
    """The float32 original (model.safetensors + config.json); its arrays."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for name, shape in shapes.items():
        if len(shape) == 1:
            arrays[name] = (1 + 0.05 * rng.standard_normal(shape)).astype(np.float32)
        else:
            arrays[name] = (rng.standard_t(4, shape) / np.sqrt(shape[1])).astype(np.float32)
    write(folder, {n: torch.from_numpy(x) for n, x in arrays.items()}, None)
    return arrays


def write(folder, tensors, quantization_config):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({n: t.contiguous() for n, t in tensors.items()}, str(folder / "model.safetensors"))
    config = dict(CONFIG)
    if quantization_config is not None:
        config["quantization_config"] = quantization_config
    (folder / "config.json").write_text(json.dumps(config))


def quantized_names(arrays, skip=("embed_tokens", "lm_head")):
    return [n for n, x in arrays.items() if x.ndim == 2 and not any(s in n for s in skip)]


def fp8_block(folder, arrays, block=(128, 128), top=448):
    """DeepSeek-V3's FP8: weight F8_E4M3 and weight_scale_inv per tile (amax / `top`, 448 as
    DeepSeek's act_quant); {name: reference}."""
    tensors, reference = {}, {}
    for name, x in arrays.items():
        if name not in quantized_names(arrays):
            tensors[name] = torch.from_numpy(x)
            continue
        rows, cols = x.shape
        grid = (-(-rows // block[0]), -(-cols // block[1]))
        scale = np.empty(grid, np.float32)
        codes = np.empty(x.shape, ml_dtypes.float8_e4m3fn)
        for i in range(grid[0]):
            for j in range(grid[1]):
                tile = x[i * block[0]:(i + 1) * block[0], j * block[1]:(j + 1) * block[1]]
                scale[i, j] = np.float32(np.abs(tile).max()) / np.float32(top)
                codes[i * block[0]:(i + 1) * block[0], j * block[1]:(j + 1) * block[1]] = \
                    (tile / scale[i, j]).astype(ml_dtypes.float8_e4m3fn)
        weight = torch.from_numpy(codes.view(np.uint8)).view(torch.float8_e4m3fn)
        tensors[name] = weight
        tensors[name + "_scale_inv"] = torch.from_numpy(scale)
        from tests.formats.stored.test_stored_fp8 import deepseek_weight_dequant
        reference[name] = deepseek_weight_dequant(weight, torch.from_numpy(scale), block).numpy()
    write(folder, tensors, {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                            "weight_block_size": list(block)})
    return reference


def compressed(folder, arrays, groups, fmt="pack-quantized", ignore=("lm_head",),
               scale_factor=None, dtype=None):
    """compressed-tensors: `groups` {group name: (targets, weights args)}; each layer takes the
    first group whose targets match it as the library matches them. {name: reference}.
    `scale_factor`: the observer's scales multiplied by it before the library quantizes with
    them (another scale rule); `dtype`: the weights cast to it first (torch.bfloat16: the
    scales and arithmetic in bf16, as llm-compressor on a bf16 model)."""
    from tests.formats.stored.test_stored_compressed_tensors import compress as library
    import re

    def compress(fmt, args, weight):
        if dtype is not None:
            weight = weight.to(dtype)
        if scale_factor is None:
            return library(fmt, args, weight)
        return _compress_scaled(fmt, args, weight, scale_factor)

    tensors, reference = {}, {}
    for name, x in arrays.items():
        module = name.rsplit(".", 1)[0]
        args = None
        if x.ndim == 2 and not any(module.endswith(i) for i in ignore) \
                and "embed_tokens" not in name:
            for targets, weights in groups.values():
                if any(re.match(t[3:], module) if t.startswith("re:") else t == "Linear"
                       for t in targets):
                    args = weights
                    break
        if args is None:
            tensors[name] = torch.from_numpy(x)
            continue
        stored, decompressed = compress(fmt, args, torch.from_numpy(x))
        for key, value in stored.items():
            tensors[f"{module}.{key}"] = value
        reference[name] = decompressed.float().numpy()
    config = {"quant_method": "compressed-tensors", "format": fmt, "ignore": list(ignore),
              "quantization_status": "compressed",
              "config_groups": {g: {"targets": list(t), "weights": w}
                                for g, (t, w) in groups.items()}}
    write(folder, tensors, config)
    return reference


def gptq(folder, arrays, bits=4, group_size=128, sym=True, act_order=False, dtype=torch.float16):
    """AutoGPTQ's quantizer and QuantLinear.pack; {name: its forward's weight (out, in)}."""
    from tests.support import gptq_awq_reference as ref

    tensors, reference = {}, {}
    generator = torch.Generator().manual_seed(1)
    for name, x in arrays.items():
        if name not in quantized_names(arrays):
            tensors[name] = torch.from_numpy(x)
            continue
        module = name.rsplit(".", 1)[0]
        weight = torch.from_numpy(x)
        perm = torch.randperm(x.shape[1], generator=generator) if act_order else None
        Q, scale, zero, g_idx = ref.gptq_fasterquant(weight, bits, group_size, sym, perm)
        packed = ref.autogptq_pack(Q, scale, zero, g_idx, bits, dtype)
        for key in ("qweight", "qzeros"):
            tensors[f"{module}.{key}"] = torch.from_numpy(packed[key])
        tensors[f"{module}.scales"] = packed["scales"]
        tensors[f"{module}.g_idx"] = packed["g_idx"].to(torch.int32)
        reference[name] = ref.autogptq_forward_weight(
            packed["qweight"], packed["qzeros"], packed["scales"], packed["g_idx"],
            bits).t().float().numpy()
    write(folder, tensors, {"quant_method": "gptq", "bits": bits, "group_size": group_size,
                            "sym": sym, "desc_act": act_order, "checkpoint_format": "gptq"})
    return reference


def awq(folder, arrays, group_size=128):
    """AutoAWQ's pseudo-quantizer and WQLinear_GEMM packing; {name: its dequantize_gemm}."""
    from tests.support import gptq_awq_reference as ref

    tensors, reference = {}, {}
    for name, x in arrays.items():
        if name not in quantized_names(arrays):
            tensors[name] = torch.from_numpy(x)
            continue
        module = name.rsplit(".", 1)[0]
        weight = torch.from_numpy(x)
        _, scales, zeros = ref.awq_pseudo_quantize(weight, 4, group_size)
        packed = ref.awq_from_linear(weight, 4, group_size, scales, zeros)
        for key in ("qweight", "qzeros", "scales"):
            value = packed[key]
            tensors[f"{module}.{key}"] = value if isinstance(value, torch.Tensor) \
                else torch.from_numpy(value)
        reference[name] = ref.awq_dequantize_gemm(
            packed["qweight"], packed["qzeros"], packed["scales"], 4,
            group_size).t().float().numpy()
    write(folder, tensors, {"quant_method": "awq", "bits": 4, "group_size": group_size,
                            "zero_point": True, "version": "gemm"})
    return reference


def _compress_scaled(fmt, arguments, weight, factor):
    """compressed-tensors' compressor fed the observer's scales times `factor`."""
    from compressed_tensors.compressors.base import BaseCompressor
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
    from compressed_tensors.quantization.utils import calculate_qparams
    from tests.formats.stored.test_stored_compressed_tensors import observed_range

    args = QuantizationArgs(**arguments)
    low, high = observed_range(weight, args)
    scale, zero = calculate_qparams(low, high, args)
    state = {"weight": weight, "weight_scale": scale * factor, "weight_zero_point": zero}
    scheme = QuantizationScheme(targets=["Linear"], weights=args)
    compressor = BaseCompressor.get_value_from_registry(fmt)
    compressed = compressor.compress(state, scheme)
    return compressed, compressor.decompress(compressed, scheme)["weight"]


def perturb(folder, name, index=0):
    """Change one stored code of tensor `name` in folder/model.safetensors (by one step)."""
    from safetensors.torch import load_file
    path = Path(folder) / "model.safetensors"
    tensors = load_file(str(path))
    value = tensors[name]
    raw = value.view(torch.uint8) if value.dtype == torch.float8_e4m3fn else value
    flat = raw.reshape(-1)
    flat[index] = flat[index] ^ 1
    save_file({n: t.contiguous() for n, t in tensors.items()}, str(path))
