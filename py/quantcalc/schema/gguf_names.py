"""A checkpoint's tensor names as GGUF names: what llama.cpp's convert_hf_to_gguf.py calls each
tensor in the GGUF it writes, by gguf-py's TensorNameMap for the model's architecture (the
table is gguf_tensor_names.py, generated from gguf-py; gguf itself is not needed here).

    names = name_map("llama", block_count=30)
    names.get("model.layers.3.self_attn.q_proj.weight")   # 'blk.3.attn_q.weight'
    names.get("blk.3.attn_q.weight")                      # a GGUF name is its own
    names.get("model.layers.3.rotary_emb.inv_freq")       # None: not in the GGUF

A lookup gives exactly what TensorNameMap(arch, block_count).get_name(name, try_suffixes=
(".weight", ".bias")) gives (convert_hf_to_gguf.py's map_tensor_name), block_count None meaning
any block. The architecture comes from the GGUF's general.architecture or a checkpoint's
config.json (architecture_of_config); failing both, from the names (infer_architecture).

Plain Python: no numpy, no gguf.
"""

import functools
import re

from quantcalc.schema import gguf_tensor_names as table

SUFFIXES = (".weight", ".bias")
ARCHITECTURES = tuple(table.ARCHITECTURES)
GGUF_PY_VERSION = table.GGUF_PY_VERSION
_DIGITS = re.compile(r"\d+")
# what follows the model's name in a Hugging Face class name (LlamaForCausalLM, BertModel)
# convert_hf_to_gguf.py's registrations (its conversion/llama.py and phi.py) of Hugging Face
# classes whose name does not name the architecture it writes: Mistral's and Mixtral's
# checkpoints become llama GGUFs (Mixtral's experts as llama's ffn_*_exps), Phi-2 a phi2 GGUF
CONVERTED_AS = {
    **dict.fromkeys(("LLaMAForCausalLM", "MistralForCausalLM", "MixtralForCausalLM",
                     "VLlama3ForCausalLM", "LlavaForConditionalGeneration",
                     "VoxtralForConditionalGeneration", "IQuestCoderForCausalLM"), "llama"),
    "PhiForCausalLM": "phi2", "Phi4ForCausalLMV": "phi3",
}
_CLASS_ENDINGS = ("ForConditionalGeneration", "ForCausalLM", "ForMaskedLM", "LMHeadModel",
                  "ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering",
                  "ForSpeechSeq2Seq", "Model")


class NameMap:
    """The GGUF name of each checkpoint name, for one architecture."""

    def __init__(self, architecture: str, block_count=None):
        if architecture not in table.ARCHITECTURES:
            raise KeyError(f"gguf-py {GGUF_PY_VERSION} has no architecture {architecture!r}")
        self.architecture, self.block_count = architecture, block_count
        kinds = set(table.ARCHITECTURES[architecture].split())
        self.exact = {}      # literal name -> GGUF name
        self.templates = {}  # name with {bid} -> (GGUF name with {bid}, order of its writing)
        for kind, keys in table.NAMES.items():
            if kind in kinds:
                gguf = table.GGUF_NAMES[kind]
                for key in (gguf, *keys):
                    self.exact[key] = gguf
        blocks = dict(table.BLOCK_NAMES)
        blocks.update(table.ARCH_BLOCK_NAMES.get(architecture, {}))
        order = 0
        for kind, keys in blocks.items():
            if kind in kinds:
                gguf = table.GGUF_NAMES[kind]
                for key in (gguf, *keys):
                    order += 1
                    self.templates[key] = (gguf, order)

    def _lookup(self, name):
        """TensorNameMap.mapping[name][1]. TensorNameMap writes the literal names first, then
        the block names for block 0, 1, ...: the last writing of a name wins, so a block name
        beats a literal one, a higher block number a lower one, and a later kind an earlier
        one. A block kind's name without {bid} is written for every block (the last: the
        highest number), and only when there are blocks."""
        last = float("inf") if self.block_count is None else self.block_count - 1
        candidates = list(_templates_of(name))
        if "{bid}" not in name:
            candidates.append((name, last))
        best = None
        for template, bid in candidates:
            found = self.templates.get(template)
            if found is None or bid > last:
                continue
            if best is None or (bid, found[1]) > best[0]:
                best = ((bid, found[1]), found[0].format(bid=bid) if "{bid}" in template
                        else found[0])
        return best[1] if best is not None else self.exact.get(name)

    def get(self, name: str, suffixes=SUFFIXES):
        """The GGUF name of `name`, or None when the architecture has no such tensor."""
        found = self._lookup(name)
        if found is not None:
            return found
        for suffix in suffixes:
            if name.endswith(suffix):
                found = self._lookup(name[:-len(suffix)])
                if found is not None:
                    return found + suffix
        return None


def _templates_of(name):
    """(name with one run of digits, or part of one, written {bid}; that number) for each way
    a block number can sit in `name`."""
    for match in _DIGITS.finditer(name):
        start, end = match.span()
        for a in range(start, end):
            for b in range(a + 1, end + 1):
                digits = name[a:b]
                if len(digits) > 1 and digits[0] == "0":
                    continue  # str(bid) never has a leading zero
                yield name[:a] + "{bid}" + name[b:], int(digits)


@functools.lru_cache(maxsize=16)
def name_map(architecture: str, block_count=None) -> NameMap:
    return NameMap(architecture, block_count)


def architecture_of_config(config) -> tuple:
    """(architecture, how it was found) from a Hugging Face config.json: its architectures
    class as convert_hf_to_gguf.py registers it (CONVERTED_AS), its model_type, or the class's
    name; (None, None) when none names an architecture gguf-py knows."""
    if not isinstance(config, dict):
        return None, None
    classes = config.get("architectures")
    classes = [c for c in classes if isinstance(c, str)] if isinstance(classes, list) else []
    for name in classes:
        if CONVERTED_AS.get(name) in table.ARCHITECTURES:
            return CONVERTED_AS[name], f"config.json architectures {name}"
    model_type = config.get("model_type")
    if isinstance(model_type, str) and model_type.lower() in table.ARCHITECTURES:
        return model_type.lower(), f"config.json model_type {model_type}"
    for name in classes:
        stem = next((name[:-len(e)] for e in _CLASS_ENDINGS if name.endswith(e)), name)
        if stem.lower() in table.ARCHITECTURES:
            return stem.lower(), f"config.json architectures {name}"
    return None, None


def block_count_of_config(config):
    """The number of blocks (layers) a config.json gives, or None."""
    if not isinstance(config, dict):
        return None
    for key in ("num_hidden_layers", "n_layer", "num_layers", "n_layers"):
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def infer_architecture(names) -> tuple:
    """(architecture, how many of `names` it maps) for the architecture whose table maps the
    most of them (the first in gguf-py's order on a tie), or (None, 0) when none maps any."""
    names = list(names)
    best, count = None, 0
    for architecture in ARCHITECTURES:
        mapper = name_map(architecture)
        mapped = sum(1 for name in names if mapper.get(name) is not None)
        if mapped > count:
            best, count = architecture, mapped
    return best, count


GGML_TYPES = frozenset(table.GGML_TYPES.split())
