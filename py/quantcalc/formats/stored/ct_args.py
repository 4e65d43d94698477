"""A compressed-tensors layer's weight quantization arguments, from config.json as plain data.

The `weights` entry of a `quantization_config.config_groups` group, checked the way
compressed-tensors' `QuantizationArgs` validates it (quantization/quant_args.py: the strategy
inferred from `group_size` when absent, `group_size` required by the group strategies,
`block_structure` by the block one) and refused with a message when it is not something a
checkpoint of that library can hold. Keys that do not change the stored values (observer,
dynamic, scale and zero-point dtypes) are ignored.
"""

from quantcalc.formats.stored import checks
from quantcalc.records import record

STRATEGIES = ("tensor", "channel", "group", "tensor_group", "block")
GROUPED = ("group", "tensor_group")


@record(frozen=True)
class WeightArgs:
    num_bits: int
    type: str                    # "int" or "float"
    symmetric: bool
    strategy: str                # one of STRATEGIES
    group_size: int = 0          # the group strategies' columns per scale
    block_structure: tuple = ()  # the block strategy's (rows, columns) per scale
    actorder: str = ""           # "weight" or "group" (activation order), else ""

    def describe(self) -> str:
        """The stored format in a few words: `int4 group 128 symmetric`, `FP8 E4M3 128x128
        blocks`, `NVFP4 group 16`."""
        if self.type == "float":
            name = "FP8 E4M3" if self.num_bits == 8 else f"FP{self.num_bits} E2M1"
            if self.num_bits == 4 and self.group_size == 16:
                name = "NVFP4"
        else:
            name = f"int{self.num_bits}"
        layout = {"tensor": "per tensor", "channel": "per channel",
                  "block": "x".join(str(n) for n in self.block_structure) + " blocks"}
        words = [name, layout.get(self.strategy, f"group {self.group_size}")]
        if self.type == "int":
            words.append("symmetric" if self.symmetric else "asymmetric")
        return " ".join(words)


def weight_args(config, layer: str = "") -> WeightArgs:
    """`config` (a dict from config.json) checked and completed as compressed-tensors does."""
    where = checks.label(layer, "weights") + " quantization args"
    if isinstance(config, WeightArgs):
        return config
    if not isinstance(config, dict):
        checks.refuse(f"{where} must be a mapping, not {type(config).__name__}")
    num_bits = _integer(config.get("num_bits", 8), f"{where}: num_bits")
    kind = str(config.get("type", "int")).lower()
    if kind not in ("int", "float"):
        checks.refuse(f"{where}: type is '{str(kind)[:20]}'; it must be 'int' or 'float'")
    symmetric = config.get("symmetric", True)
    if not isinstance(symmetric, bool):
        checks.refuse(f"{where}: symmetric is {str(symmetric)[:20]}; it must be true or false")
    group_size = config.get("group_size")
    group_size = None if group_size is None else _integer(group_size, f"{where}: group_size", -1)
    strategy = _strategy(config.get("strategy"), group_size, where)
    if strategy in GROUPED and (group_size is None or group_size <= 0):
        checks.refuse(f"{where}: strategy {strategy} needs a positive group_size")
    if strategy not in GROUPED and group_size not in (None, -1):
        checks.refuse(f"{where}: group_size {group_size} needs strategy 'group', not {strategy}")
    block = _block(config.get("block_structure"), strategy, where)
    return WeightArgs(num_bits, kind, symmetric, strategy,
                      group_size if strategy in GROUPED else 0, block,
                      _actorder(config.get("actorder"), where))


def _integer(value, where: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        checks.refuse(f"{where} is {str(value)[:20]}; it must be an integer of at least {minimum}")
    return int(value)


def _strategy(value, group_size, where: str) -> str:
    if value is None:  # as QuantizationArgs infers it
        return "tensor" if group_size is None else "group" if group_size > 0 else "channel"
    strategy = str(value).lower()
    if strategy not in STRATEGIES:
        extra = " (token and attn_head scales are computed at run time, not stored)" \
            if strategy in ("token", "attn_head") else ""
        checks.refuse(f"{where}: strategy '{strategy[:20]}' is not a stored weight layout{extra}; "
                      f"quantcalc reads {', '.join(STRATEGIES)}")
    return strategy


def _block(value, strategy: str, where: str) -> tuple:
    if strategy != "block":
        if value is not None:
            checks.refuse(f"{where}: block_structure needs strategy 'block', not {strategy}")
        return ()
    if isinstance(value, str):  # "128x128", as QuantizationArgs still accepts
        parts = value.lower().split("x")
        value = [int(p) for p in parts] if all(p.isdigit() for p in parts) else value
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in value)
    if not ok:
        checks.refuse(f"{where}: block_structure is {str(value)[:30]}; the block strategy needs "
                      "two positive integers [rows, columns]")
    return int(value[0]), int(value[1])


def _actorder(value, where: str) -> str:
    if value in (None, False):
        return ""
    if value is True:
        return "group"  # compressed-tensors' old meaning of actorder=true
    order = str(value).lower()
    aliases = {"weight": "weight", "static": "weight", "group": "group", "dynamic": "group"}
    if order not in aliases:
        checks.refuse(f"{where}: actorder '{order[:20]}' is not known (weight, static, group, "
                      "dynamic)")
    return aliases[order]
