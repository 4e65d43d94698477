"""An independent reference for GPTQ and AWQ checkpoints, transcribed from the libraries that
write them (neither is a dependency here: AutoGPTQ and AutoAWQ are built for CUDA, and AutoAWQ
is no longer maintained), written apart from quantcalc's decoder
and sharing none of its code: the quantizers, the packing, and each library's own dequantization.

- AutoGPTQ auto_gptq/quantization/quantizer.py: `Quantizer.find_params` (perchannel, min-max,
  weight=True) and `quantize`; auto_gptq/quantization/gptq.py `GPTQ.fasterquant` for the groups
  and the activation order (`perm`, `invperm`, `g_idx`).
- AutoGPTQ auto_gptq/nn_modules/qlinear/qlinear_cuda.py: `QuantLinear.pack` (the intweight loop,
  the word loops for 2/4/8 bits and the three-word 3-bit branch, `zeros -= 1`) and the torch path
  of `QuantLinear.forward` (the `wf` shifts, `zeros + 1`,
  `scales[g_idx] * (weight - zeros[g_idx])`).
- AutoAWQ awq/quantize/quantizer.py: `AwqQuantizer.pseudo_quantize_tensor` (zero_point=True);
  awq/modules/linear/gemm.py: `WQLinear_GEMM.from_linear` (order_map [0, 2, 4, 6, 1, 3, 5, 7]);
  awq/utils/packing_utils.py: `unpack_awq`, `reverse_awq_order`, `dequantize_gemm`.
"""

import numpy as np
import torch


def gptq_find_params(x, bits, sym):
    """Quantizer.find_params(x, weight=True) with perchannel=True: one scale and zero per row."""
    maxq = 2 ** bits - 1
    tmp = torch.zeros(x.shape[0])
    xmin = torch.minimum(x.min(1)[0], tmp)
    xmax = torch.maximum(x.max(1)[0], tmp)
    if sym:
        xmax = torch.maximum(torch.abs(xmin), xmax)
        tmp = xmin < 0
        if torch.any(tmp):
            xmin[tmp] = -xmax[tmp]
    tmp = (xmin == 0) & (xmax == 0)
    xmin[tmp] = -1
    xmax[tmp] = +1
    scale = (xmax - xmin) / maxq
    if sym:
        zero = torch.full_like(scale, (maxq + 1) / 2)
    else:
        zero = torch.round(-xmin / scale)
    return scale.reshape(-1, 1), zero.reshape(-1, 1)


def gptq_quantize(x, scale, zero, maxq):
    q = torch.clamp(torch.round(x / scale) + zero, 0, maxq)
    return scale * (q - zero)


def gptq_fasterquant(W, bits, group_size, sym, perm=None):
    """The quantization GPTQ.fasterquant leaves behind, without the Hessian's error feedback
    (which changes which integers are chosen, not how they are stored): columns taken in `perm`
    order (act order), a new scale and zero at each group_size-th permuted column, Q in the
    original order, and g_idx = (i // group_size)[invperm]."""
    W = W.clone().float()
    columns = W.shape[1]
    group_size = columns if group_size == -1 else group_size
    if perm is not None:
        W = W[:, perm]
        invperm = torch.argsort(perm)
    Q = torch.zeros_like(W)
    scale, zero = [], []
    for i in range(columns):
        if i % group_size == 0:
            s, z = gptq_find_params(W[:, i:i + group_size], bits, sym)
            scale.append(s)
            zero.append(z)
        Q[:, i] = gptq_quantize(W[:, i:i + 1], s, z, 2 ** bits - 1).flatten()
    g_idx = torch.tensor([i // group_size for i in range(columns)], dtype=torch.int32)
    if perm is not None:
        Q = Q[:, invperm]
        g_idx = g_idx[invperm]
    return Q, torch.cat(scale, dim=1), torch.cat(zero, dim=1), g_idx


def _pack_words(values, bits, along_rows):
    """The word loops of QuantLinear.pack, on uint32 numpy `values`: down the rows (qweight) or
    along the columns (qzeros)."""
    if not along_rows:
        return _pack_words(values.T, bits, True).T
    packed = np.zeros((values.shape[0] // 32 * bits, values.shape[1]), dtype=np.uint32)
    i, row = 0, 0
    while row < packed.shape[0]:
        if bits in [2, 4, 8]:
            for j in range(i, i + (32 // bits)):
                packed[row] |= values[j] << (bits * (j - i))
            i += 32 // bits
            row += 1
        elif bits == 3:
            for j in range(i, i + 10):
                packed[row] |= values[j] << (3 * (j - i))
            i += 10
            packed[row] |= values[i] << 30
            row += 1
            packed[row] |= (values[i] >> 2) & 1
            i += 1
            for j in range(i, i + 10):
                packed[row] |= values[j] << (3 * (j - i) + 1)
            i += 10
            packed[row] |= values[i] << 31
            row += 1
            packed[row] |= (values[i] >> 1) & 0x3
            i += 1
            for j in range(i, i + 10):
                packed[row] |= values[j] << (3 * (j - i) + 2)
            i += 10
            row += 1
    return packed


def autogptq_pack(Q, scales, zeros, g_idx, bits, weight_dtype, v2=False):
    """QuantLinear.pack(linear, scales, zeros, g_idx) with linear.weight = Q in `weight_dtype`:
    the stored qweight, qzeros, scales and g_idx, and the integers before packing. `v2` skips
    the `zeros -= 1` (GPTQModel's gptq_v2 format)."""
    W = Q.to(weight_dtype)
    scales = scales.t().contiguous()
    zeros = zeros.t().contiguous()
    scale_zeros = zeros * scales
    stored_scales = scales.clone().to(dtype=weight_dtype)
    intweight = []
    for idx in range(W.shape[1]):
        intweight.append(torch.round((W[:, idx] + scale_zeros[g_idx[idx]])
                                     / stored_scales[g_idx[idx]]).to(torch.int)[:, None])
    intweight = torch.cat(intweight, dim=1).t().contiguous()
    qweight = _pack_words(intweight.numpy().astype(np.uint32), bits, True).astype(np.int32)
    integer_zeros = zeros.clone()
    if not v2:
        zeros = zeros - 1
    qzeros = _pack_words(zeros.numpy().astype(np.int64).astype(np.uint32), bits, False)
    return {"qweight": qweight, "qzeros": qzeros.astype(np.int32), "scales": stored_scales,
            "g_idx": g_idx.clone(), "intweight": intweight, "zeros": integer_zeros}


def autogptq_forward_weight(qweight, qzeros, scales, g_idx, bits):
    """The (in, out) weight QuantLinear.forward's torch path multiplies by (v1 zeros)."""
    qweight, qzeros = torch.from_numpy(qweight), torch.from_numpy(qzeros)
    if bits in [2, 4, 8]:
        wf = torch.tensor(list(range(0, 32, bits)), dtype=torch.int32).unsqueeze(0)
        zeros = torch.bitwise_right_shift(torch.unsqueeze(qzeros, 2).expand(-1, -1, 32 // bits),
                                          wf.unsqueeze(0)).to(torch.int16 if bits == 8 else
                                                              torch.int8)
        zeros = torch.bitwise_and(zeros, (2 ** bits) - 1)
        zeros = zeros + 1
        zeros = zeros.reshape(scales.shape)
        weight = torch.bitwise_right_shift(torch.unsqueeze(qweight, 1).expand(-1, 32 // bits, -1),
                                           wf.unsqueeze(-1)).to(torch.int16 if bits == 8 else
                                                                torch.int8)
        weight = torch.bitwise_and(weight, (2 ** bits) - 1)
    else:
        wf = torch.tensor([[0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 0],
                           [0, 1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31],
                           [0, 2, 5, 8, 11, 14, 17, 20, 23, 26, 29, 0]],
                          dtype=torch.int32).reshape(1, 3, 12)
        zeros = qzeros.reshape(qzeros.shape[0], qzeros.shape[1] // 3, 3, 1).expand(-1, -1, -1, 12)
        zeros = zeros >> wf.unsqueeze(0)
        zeros[:, :, 0, 10] = (zeros[:, :, 0, 10] & 0x3) | ((zeros[:, :, 1, 0] << 2) & 0x4)
        zeros[:, :, 1, 11] = (zeros[:, :, 1, 11] & 0x1) | ((zeros[:, :, 2, 0] << 1) & 0x6)
        zeros = zeros & 0x7
        zeros = torch.cat([zeros[:, :, 0, :11], zeros[:, :, 1, 1:12], zeros[:, :, 2, 1:11]], dim=2)
        zeros = zeros + 1
        zeros = zeros.reshape(scales.shape)
        weight = qweight.reshape(qweight.shape[0] // 3, 3, 1, qweight.shape[1]).expand(-1, -1, 12,
                                                                                       -1)
        weight = (weight >> wf.unsqueeze(-1)) & 0x7
        weight[:, 0, 10] = (weight[:, 0, 10] & 0x3) | ((weight[:, 1, 0] << 2) & 0x4)
        weight[:, 1, 11] = (weight[:, 1, 11] & 0x1) | ((weight[:, 2, 0] << 1) & 0x6)
        weight = weight & 0x7
        weight = torch.cat([weight[:, 0, :11], weight[:, 1, 1:12], weight[:, 2, 1:11]], dim=1)
    weight = weight.reshape(weight.shape[0] * weight.shape[1], weight.shape[2])
    return scales[g_idx.long()] * (weight - zeros[g_idx.long()])


def awq_pseudo_quantize(w, w_bit, group_size):
    """AwqQuantizer.pseudo_quantize_tensor with zero_point=True: (w, scales, zeros), scales and
    zeros (out, groups)."""
    org_w_shape = w.shape
    if group_size > 0:
        w = w.reshape(-1, group_size)
    max_val = w.amax(dim=1, keepdim=True)
    min_val = w.amin(dim=1, keepdim=True)
    max_int = 2 ** w_bit - 1
    min_int = 0
    scales = (max_val - min_val).clamp(min=1e-5) / max_int
    zeros = (-torch.round(min_val / scales)).clamp_(min_int, max_int)
    w = (torch.clamp(torch.round(w / scales) + zeros, min_int, max_int) - zeros) * scales
    zeros = zeros.view(org_w_shape[0], -1)
    return w.reshape(org_w_shape), scales.view(org_w_shape[0], -1), zeros


def awq_from_linear(weight, w_bit, group_size, scales, zeros):
    """WQLinear_GEMM.from_linear(linear, w_bit, group_size, scales=scales.t(), zeros=zeros.t())
    as AwqQuantizer._apply_quant calls it: qweight, qzeros, scales (fp16) and the integers."""
    in_features = weight.shape[1]
    group_size = in_features if group_size == -1 else group_size
    scales, zeros = scales.t().contiguous(), zeros.t().contiguous()
    scale_zeros = zeros * scales
    stored_scales = scales.clone().half()
    pack_num = 32 // w_bit
    intweight = []
    for idx in range(in_features):
        intweight.append(torch.round((weight[:, idx] + scale_zeros[idx // group_size])
                                     / stored_scales[idx // group_size]).to(torch.int)[:, None])
    intweight = torch.cat(intweight, dim=1).t().contiguous().to(dtype=torch.int32)
    qweight = torch.zeros((intweight.shape[0], intweight.shape[1] // 32 * w_bit),
                          dtype=torch.int32)
    order_map = [0, 2, 4, 6, 1, 3, 5, 7]
    for col in range(intweight.shape[1] // pack_num):
        for i in range(pack_num):
            qweight[:, col] |= intweight[:, col * pack_num + order_map[i]] << (i * w_bit)
    integer_zeros = zeros.to(dtype=torch.int32)
    qzeros = torch.zeros((integer_zeros.shape[0], integer_zeros.shape[1] // 32 * w_bit),
                         dtype=torch.int32)
    for col in range(integer_zeros.shape[1] // pack_num):
        for i in range(pack_num):
            qzeros[:, col] |= integer_zeros[:, col * pack_num + order_map[i]] << (i * w_bit)
    return {"qweight": qweight.numpy(), "qzeros": qzeros.numpy(), "scales": stored_scales,
            "intweight": intweight, "zeros": integer_zeros}


AWQ_REVERSE_ORDER = [0, 4, 1, 5, 2, 6, 3, 7]


def awq_dequantize_gemm(qweight, qzeros, scales, bits, group_size):
    """dequantize_gemm: unpack_awq, reverse_awq_order, mask, (iweight - izeros) * scales,
    (in, out) in float16."""
    qweight, qzeros = torch.from_numpy(qweight), torch.from_numpy(qzeros)
    shifts = torch.arange(0, 32, bits)
    iweights = torch.bitwise_right_shift(qweight[:, :, None], shifts[None, None, :]).to(torch.int8)
    iweights = iweights.view(iweights.shape[0], -1)
    izeros = torch.bitwise_right_shift(qzeros[:, :, None], shifts[None, None, :]).to(torch.int8)
    izeros = izeros.view(izeros.shape[0], -1)
    reverse_order_tensor = torch.arange(izeros.shape[-1], dtype=torch.int32)
    reverse_order_tensor = reverse_order_tensor.view(-1, 32 // bits)
    reverse_order_tensor = reverse_order_tensor[:, AWQ_REVERSE_ORDER].view(-1)
    izeros = izeros[:, reverse_order_tensor]
    iweights = iweights[:, reverse_order_tensor]
    iweight = torch.bitwise_and(iweights, (2 ** bits) - 1)
    izeros = torch.bitwise_and(izeros, (2 ** bits) - 1)
    scales = scales.repeat_interleave(group_size, dim=0)
    izeros = izeros.repeat_interleave(group_size, dim=0)
    return (iweight - izeros) * scales
