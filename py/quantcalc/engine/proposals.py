"""The cheap structural changes a hint proposes, each measured on the values: a scale per
output channel (axis 0), groups of 128 along the last axis, and a block format at about the same
bits per value (BLOCK_PEERS). Every proposal quotes the SQNR it gains and what it costs in bits
per value, scales included, and proposals are ranked by gain per extra bit (`rank`).

Bounded in time: a tensor of up to WHOLE_VALUES values is measured whole; a larger one on a
sample of whole rows (slices along axis 0; a 1-D tensor in segments of SEGMENT values), evenly
spaced, plus the row that holds the largest |x| (so a range set by the extreme is the whole
tensor's), about WHOLE_VALUES values in all. The current settings are measured on the same
sample, so each gain compares like with like, and the hint says it was sampled. Each trial is
one analysis: at most 2 + 3 of them.

A calibration that searches (entropy, MSE) runs its search once per scale: a 384 x 384 tensor
in groups of 128 is 1,152 entropy searches, two minutes natively and four in the page. Under
such a calibration the sample holds at most SEARCHED_SCALES scales of the proposal with the most
(whole rows still, evenly spaced, with the extreme's), so the hints take seconds.
"""

import dataclasses
import math

import numpy as np

from quantcalc.engine import analysis
from quantcalc.engine.config import Config
from quantcalc.errors import QuantcalcError

WHOLE_VALUES = 1 << 20     # measured whole up to this many values, else sampled to about this
SEGMENT = 4096             # a 1-D tensor is sampled in segments of this many values
GROUP = 128                # the group size proposed
FEW_VALUES = 4096          # fewer values: a scale's cost is not a full tensor's; no proposal
FREE_BITS = 0.1            # a change costing less than this (bits per value) counts as free
DB_PER_BIT = 6.02          # a change that costs bits must beat one more bit of precision
SEARCHED = ("entropy", "mse")  # calibrations that search for each scale's range
SEARCHED_SCALES = 32       # under them, the most scales a proposal is measured with
# the block formats tried at each element width: a llama.cpp type and an OCP/NVIDIA one
BLOCK_PEERS = {8: ("q8_0", "mxint8"), 6: ("q6_k",), 5: ("q5_k", "q5_0"),
               4: ("q4_k", "q4_0", "nvfp4"), 3: ("q3_k",), 2: ("q2_k",)}


def rank(hint) -> float:
    """Gain per extra bit: SQNR gained over max(extra bits, FREE_BITS); the larger first."""
    gain = hint["gain_db"]
    return gain if math.isinf(gain) else gain / max(hint["extra_bits"], FREE_BITS)


def worth(gain, extra, least_db) -> bool:
    """A proposal worth making: `least_db` or more, and where it costs bits, more than the
    6.02 dB each bit of precision gives."""
    return gain >= least_db and (extra <= FREE_BITS or gain / extra >= DB_PER_BIT)


def cost(extra) -> str:
    """"+0.0833 bits/value", "−0.25 bits/value", "+0 bits/value"."""
    return f"{'+' if extra >= 0 else '−'}{abs(extra):.3g} bits/value"


def _measure(values, config, importance):
    """(SQNR, bits per value) of `config` on the values, or None where it is refused."""
    try:
        metrics = analysis.analyze(values, config, keep=0, importance=importance).metrics
    except QuantcalcError:
        return None
    return metrics["sqnr_db"], metrics["bits_per_value"]


def _offered(config, changes):
    """Whether config's framework convention offers the changed settings."""
    try:
        dataclasses.replace(config, **changes)
    except QuantcalcError:
        return False
    return True


def _candidates(config, shape):
    """[(label, changes, Config, is_block_format)] to try instead of `config` on values of
    `shape`: the settings changed, and the configuration they make."""
    out = []
    fmt = config.format_row
    last = shape[-1] if shape else 1
    if fmt.applies("granularity"):
        if config.granularity == "tensor" and len(shape) >= 2 and shape[0] > 1:
            out.append(("Per channel (axis 0: one scale per output channel)",
                        {"granularity": "channel", "axis": 0}))
        if config.granularity in ("tensor", "channel") and last > GROUP:
            out.append((f"Groups of {GROUP} along the last axis",
                        {"granularity": "group", "group_size": GROUP}))
    # a framework convention offers no groups (nor block formats): nothing to propose there
    out = [(label, changes, dataclasses.replace(config, **changes), False)
           for label, changes in out if _offered(config, changes)]
    bits = config.bits if fmt.element_bits is None else fmt.element_bits
    for peer in BLOCK_PEERS.get(bits, ()) if config.convention == "exact" else ():
        if peer != config.format:
            other = Config(name=config.name, format=peer)
            out.append((f"{other.format_row.label.removeprefix('GGUF ')}, a block format",
                        {"format": peer}, other, True))
    return out


def _extreme(x):
    """The flat index of the largest |x| (no copy of |x|: the largest and smallest compared)."""
    high, low = int(np.argmax(x)), int(np.argmin(x))
    flat = x.reshape(-1)
    return high if abs(float(flat[high])) >= abs(float(flat[low])) else low


def sample(values, importance, budget=None):
    """(values, importance, note): the values the proposals are measured on (about `budget`
    of them), and "" or the sentence that says they were sampled; values None where no sample
    can be made (a 1-D tensor with an importance matrix, one row larger than the budget)."""
    x = np.asarray(values)
    budget = WHOLE_VALUES if budget is None else budget
    if x.size <= budget:
        return x, importance, ""
    extreme = _extreme(x)
    if x.ndim >= 2:
        units, per_unit, word = x.shape[0], x.size // x.shape[0], "rows"
        starts = None
    elif importance is None:
        units, per_unit, word = x.size // SEGMENT, SEGMENT, f"segments of {SEGMENT} values"
        starts = True
    else:
        return None, None, ""
    count = budget // per_unit
    if count < 1 or count >= units:
        return (None, None, "") if count < 1 else (x, importance, "")
    picks = sorted(set((np.arange(count) * units // count).tolist())
                   | {min(extreme // per_unit, units - 1)})
    if starts:  # a 1-D tensor as rows of SEGMENT values; the extreme's own segment included
        edge = min(extreme // SEGMENT * SEGMENT, x.size - SEGMENT)
        rows = [x[i * SEGMENT:(i + 1) * SEGMENT] for i in picks if i != extreme // per_unit]
        taken = np.stack(rows + [x[edge:edge + SEGMENT]])
    else:
        taken = x[picks]
    note = (f"Measured on {len(picks)} of {units} {word}, evenly spaced, with the one holding "
            f"the largest |x|.")
    return taken, importance, note


def _budget(config, shape):
    """Values to measure the proposals on: WHOLE_VALUES, or under a searched calibration the
    rows (1-D: segments) that hold SEARCHED_SCALES scales of the proposal with the most (one
    per row per channel, one per GROUP values in groups), at least one row."""
    if config.calibration not in SEARCHED or not shape or 0 in shape:
        return WHOLE_VALUES
    if len(shape) >= 2:  # groups along the last axis, those of every vector in a row
        row = math.prod(shape[1:])
        scales_per_row = math.ceil(shape[-1] / GROUP) * (row // shape[-1])
    else:
        row, scales_per_row = SEGMENT, math.ceil(SEGMENT / GROUP)
    return min(WHOLE_VALUES, max(1, SEARCHED_SCALES // scales_per_row) * row)


def structural(values, result, importance, least_db):
    """Hints {"kind": "structure", "text", "gain_db", "extra_bits", "settings"} for the
    structural changes worth making (`worth`), the best block format only."""
    config = result.config
    candidates = _candidates(config, tuple(result.shape))
    if result.count < FEW_VALUES or not candidates:
        return []
    x, weights, note = sample(values, importance, _budget(config, tuple(result.shape)))
    if x is None:
        return []
    base = (result.metrics["sqnr_db"], result.metrics["bits_per_value"]) if not note \
        else _measure(x, config, weights)
    if base is None:
        return []
    found, blocks = [], []
    for label, changes, other, is_block in candidates:
        measured = _measure(x, other, weights)
        if measured is None:
            continue
        gain = math.inf if measured[0] == math.inf and base[0] != math.inf \
            else measured[0] - base[0]
        extra = measured[1] - base[1]
        if not worth(gain, extra, least_db):
            continue
        sign = "+" if gain >= 0 else "−"
        text = (f"{label}: SQNR {sign}{'∞' if math.isinf(gain) else f'{abs(gain):.1f}'} dB "
                f"for {cost(extra)}." + (f" {note}" if note else ""))
        (blocks if is_block else found).append(
            {"kind": "structure", "text": text, "gain_db": gain, "extra_bits": extra,
             "settings": changes})
    return found + ([max(blocks, key=rank)] if blocks else [])
