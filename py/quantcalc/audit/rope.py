"""convert_hf_to_gguf.py's rope permutation of the q and k projections, and where it applies.

LlamaModel.permute reorders each head's rows from Hugging Face's rotate-half layout (dimension i
paired with i + d/2) to the interleaved pairs llama.cpp's rope reads (2i with 2i + 1):

    weights.reshape(n_head, 2, rows // n_head // 2, *rest).swapaxes(1, 2).reshape(weights.shape)

applied to `q_proj` with the attention heads and to `k_proj` with the key/value heads (biases
too), for the architectures whose converter class keeps `undo_permute` (LlamaModel and its
subclasses that do not turn it off). A tensor named otherwise (Mistral's own `attention.wq`
format, which the converter leaves alone) is not permuted. Without it every q/k pair of a Llama
GGUF shows an SQNR near -3 dB.
"""

import numpy as np

# GGUF architectures written by LlamaModel or a subclass that keeps undo_permute = True
PERMUTED_ARCHITECTURES = ("llama", "granite", "granitemoe", "arcee", "llada")
QUERY = ("q_proj.weight", "q_proj.bias")
KEY = ("k_proj.weight", "k_proj.bias")


def which(architecture, hf_name):
    """"q", "k" or None: whether the converter permuted the tensor `hf_name`."""
    if architecture not in PERMUTED_ARCHITECTURES:
        return None
    if hf_name.endswith(QUERY):
        return "q"
    if hf_name.endswith(KEY):
        return "k"
    return None


def heads_for(kind, head_count, head_count_kv):
    """The n_head LlamaModel.permute uses: q takes the heads, k the key/value heads when they
    differ (permute(k, n_head, n_kv_head))."""
    if kind == "k" and head_count_kv:
        return head_count_kv
    return head_count


def gguf_order(rows, heads):
    """Index array p: the GGUF's row i is the Hugging Face row p[i]; None when the rows do not
    split into `heads` heads of an even number of rows."""
    if not heads or heads <= 0 or rows % (2 * heads):
        return None
    return np.arange(rows).reshape(heads, 2, rows // heads // 2).swapaxes(1, 2).reshape(-1)
