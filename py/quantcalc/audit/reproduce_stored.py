"""Was a quantized safetensors layer made from these original values by its format's plain
min-max rule? (audit/reproduce.py asks the same of llama.cpp's types.)

The rule each format's maker applies without calibration data (formats/stored/remake.py):

    "min-max (compressed-tensors)"  compressed-tensors' observer and quantizer, int or FP8, per
                                    tensor / channel / group / block, symmetric or not
    "amax/448 (DeepSeek-V3)"        FP8 with weight_scale_inv per tile
    "amax/448"                      FP8 with a per-tensor or per-channel weight_scale
    "OCP MX (floor log2 amax)"      gpt-oss's MXFP4 (formats/stored/mxfp4.py)

The original's slab is quantized by the rule and its codes, scales and zero points compared bit
for bit with the stored ones: `reproduced` true when all are equal, false at the first
difference (GPTQ's error feedback, AWQ's scaling, another scale rule such as amax / 447, a
perturbed code). A per-tensor scale needs the whole tensor's range: the slab's codes are made
with the stored scale and the scale itself checked when the last slab is in. The rule's own
error (`plain_sqnr_db`) is measured beside the stored one.

Where the maker's arithmetic cannot be matched bit for bit `reproduced` stays null and the
row's notes say why (GPTQ / AWQ need the calibration activations; NVFP4's two-level scale,
activation order).
"""

import numpy as np

from quantcalc.engine.metrics import ErrorAccumulator
from quantcalc.formats.stored import blocks, compressed_tensors as ct, fp8, packing, remake
from quantcalc.formats.stored.ct_args import weight_args
from quantcalc.readers.stored_layers import StoredLayer

CT = "min-max (compressed-tensors)"
DEEPSEEK = "amax/448 (DeepSeek-V3)"
AMAX = "amax/448"
MX = "OCP MX (floor log2 amax)"


def applies(held) -> bool:
    return isinstance(held, StoredLayer) and not held.refusal


def why_not(layer) -> str | None:
    """Why the layer's making cannot be reproduced, or None when it can be tried."""
    if layer.method in ("gptq", "awq"):
        return (f"not reproduced: {layer.method.upper()} chooses its codes from calibration "
                "activations (error feedback / activation-aware scales) the audit does not have")
    if layer.method == "compressed-tensors":
        args, fmt = weight_args(layer.args["args"]), str(layer.args["format"]).lower()
        if fmt == "nvfp4-pack-quantized" or args.num_bits != 8 and args.type == "float":
            return ("not reproduced: NVFP4's FP8 block scales under a global scale are not "
                    "remade by quantcalc bit for bit")
        if args.actorder or "weight_g_idx" in layer.parts:
            return ("not reproduced: activation order comes from calibration data (GPTQ), "
                    "not from the weights")
        if args.type == "float" and not args.symmetric:
            return "not reproduced: asymmetric FP8 is not a compressed-tensors scheme"
    if layer.method == "fp8" and layer.args.get("kind") != "e4m3":
        return "not reproduced: only FP8 E4M3 scale rules are remade"
    if layer.method == "fp8-block" and layer.args.get("kind") != "e4m3":
        return "not reproduced: only FP8 E4M3 scale rules are remade"
    return None


class StoredReproduction:
    """Fed the original's rows and the slab's stored parts (by suffix) slab by slab."""

    def __init__(self, layer: StoredLayer):
        self.layer = layer
        self.reason = why_not(layer)
        self.equal = True
        self.plain = ErrorAccumulator(signal_bound=None)
        self.whole_range = None        # a per-tensor scale: (min, max) over every slab
        self.stored_scale = None
        self.plain_exact = True        # False: the per-tensor plain error used another scale
        self.rule = None
        self.dtype = "F32"
        if self.reason is None:
            self._setup()

    def _setup(self):
        layer, parts = self.layer, self.layer.parts
        if layer.method == "compressed-tensors":
            self.args = weight_args(layer.args["args"])
            self.rule = CT
            scale = parts.get("weight_scale")
            self.dtype = scale.dtype if scale is not None else "F32"
        elif layer.method == "fp8-block":
            self.rule = DEEPSEEK
        elif layer.method == "mxfp4":
            self.rule = MX
        else:  # fp8 with a per-tensor or per-channel weight_scale, or none
            self.rule = AMAX
            scale = parts.get("weight_scale")
            self.dtype = scale.dtype if scale is not None else "F32"

    def add(self, original, tensors):
        if self.reason is not None or tensors is None:
            return
        values = np.ascontiguousarray(original, np.float32)
        if self.rule == MX:  # experts stay 3-D: the groups of 32 run along the stored rows
            from quantcalc.formats.stored import mxfp4
            blocks_made, scales_made, recon = mxfp4.remake(values)
            self.equal = self.equal and mxfp4.same_as_stored(blocks_made, scales_made, tensors)
            self.plain.add(values.reshape(-1).astype(np.float64),
                           recon.reshape(-1).astype(np.float64) - values.reshape(-1))
            return
        values = values.reshape(values.shape[0], -1) if values.ndim > 1 else values.reshape(1, -1)
        if self.rule == CT:
            made, recon = self._compressed(values, tensors)
        elif self.rule == DEEPSEEK:
            made, recon = self._deepseek(values, tensors)
        else:
            made, recon = self._fp8_scaled(values, tensors)
        self.equal = self.equal and made
        self.plain.add(values.astype(np.float64), recon.astype(np.float64) - values)

    def _deepseek(self, values, tensors):
        block = tuple(self.layer.args["block"])
        codes, scale = remake.deepseek_fp8(values, block)
        stored_scale = np.asarray(tensors["weight_scale_inv"], np.float32)
        same = _bits_equal(scale, stored_scale) and np.array_equal(codes, tensors["weight"])
        recon = fp8.block_scaled(codes, scale, block)
        return same, recon

    def _fp8_scaled(self, values, tensors):
        """FP8 with one weight_scale per tensor or per row (or none): amax / 448."""
        stored = tensors.get("weight_scale")
        if stored is None:  # unscaled FP8: the cast itself
            codes = remake.e4m3_bytes(values)
            return bool(np.array_equal(codes, tensors["weight"])), fp8.decode(codes)
        block, stored = fp8.per_tensor_or_channel(np.asarray(stored, np.float32), values.shape,
                                                  "weight_scale")
        whole = self.layer.parts["weight_scale"].count == 1
        args = weight_args({"num_bits": 8, "type": "float", "symmetric": True,
                            "strategy": "tensor" if whole else "channel"})
        return self._scaled(values, tensors, args, block, stored, None, "float-quantized")

    def _compressed(self, values, tensors):
        args, fmt = self.args, str(self.layer.args["format"]).lower()
        rows, cols = values.shape
        raw_scale = np.asarray(tensors["weight_scale"], np.float32)
        block, stored_scale = ct._scale_grid(raw_scale, args, (rows, cols), "weight_scale")
        stored_zero = None
        if not args.symmetric:
            stored_zero = ct._zero_point(tensors, args, stored_scale.shape, self.layer.module,
                                         fmt == "pack-quantized")
        return self._scaled(values, tensors, args, block, stored_scale, stored_zero, fmt)

    def _scaled(self, values, tensors, args, block, stored_scale, stored_zero, fmt):
        """Codes made with the rule's scales (with the stored one for a per-tensor scale, then
        checked at the end) compared with the stored codes; the rule's reconstruction."""
        if args.strategy == "tensor":  # the whole tensor's range decides the scale: kept for the end
            low, high = np.float32(values.min()), np.float32(values.max())
            if self.whole_range is None:
                self.whole_range = (low, high)
            else:
                self.whole_range = (min(self.whole_range[0], low),
                                    max(self.whole_range[1], high))
            self.stored_scale = (stored_scale, stored_zero)
            scale, zero = stored_scale.astype(np.float32), stored_zero
        else:
            low, high = remake.block_range(values, block)
            scale, zero = remake.minmax_qparams(low, high, args, self.dtype)
        codes = remake.minmax_codes(values, scale, zero, block, args, self.dtype)
        same = _bits_equal(scale, stored_scale) and _zeros_equal(zero, stored_zero) \
            and np.array_equal(codes, _stored_codes(tensors, args, fmt, values.shape))
        if args.type == "float":
            recon = blocks.apply(fp8.decode(codes).astype(np.float32), block, scale)
        else:
            recon = blocks.apply(codes.astype(np.float32), block, scale,
                                 None if zero is None else zero.astype(np.float32))
        return same, recon

    def finish(self) -> dict:
        out = {"reproduced": None, "reproduced_as": None, "plain_sqnr_db": None,
               "plain_mse": None}
        if self.reason is not None or not self.plain.count:
            return out
        if self.whole_range is not None:
            stored_scale, stored_zero = self.stored_scale
            args = self.args if self.rule == CT else weight_args(
                {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "tensor"})
            low, high = (np.array([[v]], np.float32) for v in self.whole_range)
            scale, zero = remake.minmax_qparams(low, high, args, self.dtype)
            scale_same = _bits_equal(scale, stored_scale) and _zeros_equal(zero, stored_zero)
            self.equal = self.equal and scale_same
            self.plain_exact = scale_same
        out["reproduced"] = bool(self.equal)
        out["reproduced_as"] = self.rule if self.equal else None
        if self.plain_exact:
            metrics = self.plain.finish()
            out["plain_sqnr_db"], out["plain_mse"] = metrics["sqnr_db"], metrics["mse"]
        return out

    def note(self) -> str | None:
        """What the row's notes say about the reproduction."""
        if self.reason is not None:
            return self.reason
        if not self.plain_exact:
            return ("no plain SQNR: the per-tensor scale differs from the rule's, and the rule's "
                    "codes would need a second pass over the tensor")
        return None


def _bits_equal(a, b) -> bool:
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    return a.shape == b.shape and bool(np.array_equal(a.view(np.uint32), b.view(np.uint32)))


def _zeros_equal(made, stored) -> bool:
    if made is None or stored is None:
        return made is None and stored is None
    return bool(np.array_equal(np.asarray(made, np.int64).reshape(np.shape(stored)),
                               np.asarray(stored, np.int64)))


def _stored_codes(tensors, args, fmt, shape):
    """The slab's stored codes: int16 values for int schemes, E4M3 bytes for FP8."""
    if fmt == "pack-quantized":
        bits = args.num_bits
        return packing.unpack(tensors["weight_packed"], bits, shape[1], axis=1).astype(np.int16) \
            - (1 << (bits - 1))
    weight = np.asarray(tensors["weight"])
    return weight.astype(np.int16) if args.type == "int" else weight
