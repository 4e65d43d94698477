"""Bit-budget planner: the per-tensor mix of formats that loses least for a target size.

From a scan (scan/model_scan.py) with several candidate formats per tensor: each tensor's candidates are
points (bits, error) with bits = bits per value x parameters and error = MSE x parameters (its
share of the model's total squared error; the importance-weighted MSE when the scan used an
importance matrix and every candidate of the tensor has one). The model's error is the sum.

  1. Each tensor keeps its lower convex hull (Pareto front, then convex): a point above the
     hull is never the best choice for any price of a bit.
  2. Lagrangian sweep, exact on the hull: every tensor starts at its cheapest hull point; the
     hull's upgrades of all tensors are taken in order of error saved per bit, best first, while
     the budget allows. Each total it passes through is the exact minimum error for that many
     bits (the classic result for separable convex allocation, Shoham & Gersho 1988).
  3. The budget left is filled greedily: any single change of one tensor to any candidate
     (off-hull points too) that fits, the most error saved per bit first.

Float sums are math.fsum (correctly rounded): Python 3.12's sum() compensates and 3.11's does
not, and the page (Pyodide's 3.12) must give the command line's last digit. The budget is never
exceeded. Tensors kept in high precision (1-D norms and biases, names
matching the user's patterns, tensors no candidate can take) are fixed and counted in the size:
F32 for 1-D tensors, as GGUF stores them, F16 otherwise.
"""

import math
import re
from dataclasses import field

from quantcalc.errors import QuantcalcError
from quantcalc.plan import keep_patterns
from quantcalc.plan import kept as kept_rules
from quantcalc.records import record
from quantcalc.scan import roles as tensor_roles

KEPT_BITS = {"F32": 32.0, "F16": 16.0}


@record
class Tensor:
    name: str
    role: str
    layer: object
    parameters: int
    row_length: int
    options: list                  # [(format label, bits, error)], bits and error per tensor
    kept: str = None               # "F32" / "F16" when fixed in high precision, or the
    reason: str = ""               # stored type of a tensor kept as it is (Q4_1, I64)
    stored_bits: float = None      # bits per value of a tensor kept as stored

    @property
    def kept_bits(self) -> float:
        bits = KEPT_BITS.get(self.kept) if self.stored_bits is None else self.stored_bits
        return (16.0 if bits is None else bits) * self.parameters


@record
class Plan:
    target_bits: float
    choice: dict                   # tensor name -> index into its options (kept: absent)
    tensors: list
    notes: list = field(default_factory=list)

    @property
    def bits(self) -> float:
        return math.fsum(t.kept_bits if t.kept else t.options[self.choice[t.name]][1]
                   for t in self.tensors)

    @property
    def error(self) -> float:
        return math.fsum(t.options[self.choice[t.name]][2] for t in self.tensors if not t.kept)

    @property
    def parameters(self) -> int:
        return sum(t.parameters for t in self.tensors)

    @property
    def bits_per_weight(self) -> float:
        return self.bits / self.parameters

    def format_of(self, tensor) -> str:
        return tensor.kept if tensor.kept else tensor.options[self.choice[tensor.name]][0]


def tensors_from_scan(doc, keep=(), minimum=None, weighted=True, gguf_names=None,
                      architecture=None) -> list:
    """The planner's view of a scan document: candidates per tensor, and what is kept.

    Args:
        keep: regular expressions; a tensor whose name matches one is kept in F16.
        minimum: {role: format label}; a tensor of that role takes no format with fewer bits
            per value than that format.
        weighted: use the importance-weighted MSE where every candidate of a tensor has one.
        gguf_names: {name: GGUF name or None}; a tensor llama-quantize never quantizes (BERT's
            position embeddings) is kept in F16.
        architecture: the model's architecture when gguf_names are its own (not guessed): a
            tensor without a GGUF name is one convert_hf_to_gguf.py drops (BERT's pooler,
            GPT-2's attention-mask buffers), kept as stored.
    """
    # matched by an automaton in time linear in the name: re backtracks, and may never end
    patterns = [keep_patterns.compile_pattern(pattern) for pattern in keep]
    floors = _floors(doc, minimum or {})
    out = []
    for row in doc["tensors"]:
        n = int(row["parameters"])
        tensor = Tensor(row["name"], row["role"], row["layer"], n,
                        int(row["shape"][-1]) if row["shape"] else 1, [])
        results = [r for r in row["results"] if r["error"] is None]
        never = kept_rules.never_quantized((gguf_names or {}).get(row["name"]), row["shape"])
        if architecture and (gguf_names or {}).get(row["name"]) is None:
            # not in the GGUF at all: it takes no space there and is not one of its weights
            tensor.kept, tensor.reason = kept_rules.not_in_gguf(row, architecture)
            tensor.parameters, tensor.stored_bits = 0, 0.0
        elif len(row["shape"]) <= 1:
            tensor.kept, tensor.reason = "F32", "1-D: kept in F32, as GGUF stores norms"
        elif any(p.search(row["name"]) for p in patterns):
            tensor.kept, tensor.reason = "F16", "matches a keep pattern"
        elif not results:
            tensor.kept, tensor.reason, bits = kept_rules.without_candidates(row)
            tensor.stored_bits = None if tensor.kept in KEPT_BITS else bits
        elif never:
            tensor.kept, tensor.reason = "F16", never
        out.append(tensor)
        if tensor.kept:
            continue
        _add_options(tensor, row, results, floors, weighted)
    return out


def _add_options(tensor, row, results, floors, weighted):
    """The tensor's candidates: (format, bits, error) of each result its role's floor allows."""
    n = tensor.parameters
    use_weighted = weighted and all(r.get("weighted_mse") is not None for r in results)
    floor = None
    if row["role"] in floors:  # the floor format's bits where it measured this tensor
        floor = next((r["bits_per_value"] for r in results
                      if r["format"] == floors[row["role"]]), None)
    labels = set()
    for r in results:
        # a result measured in llama.cpp's fallback type (Q4_K on rows of 384 is Q5_0) is an
        # option of that type, which llama-quantize writes: listed once however many ask for it
        label = r.get("measured_as") or r["format"]
        if label in labels or floor is not None and r["bits_per_value"] < floor:
            continue
        labels.add(label)
        mse = r["weighted_mse"] if use_weighted else r["mse"]
        tensor.options.append((label, r["bits_per_value"] * n, float(mse) * n))
    if not tensor.options:
        tensor.kept, tensor.reason = "F16", "no candidate meets the role's minimum format"


def _floors(doc, minimum) -> dict:
    """{role: format label} of --min ROLE=FORMAT, each role one the scan's names can have (or a
    role of this scan) and each format one the scan measured."""
    labels = [f["label"] for f in doc["formats"]]
    roles = sorted({role for _, role in tensor_roles.ROLES} | {"other"}
                   | {row["role"] for row in doc["tensors"]})
    floors = {}
    for role, label in minimum.items():
        if role not in roles:
            raise QuantcalcError(f"--min {role}={label}: there is no role {role}; the roles are "
                                 f"{', '.join(roles)}", "minimum")
        if label not in labels:
            raise QuantcalcError(f"minimum format {label} for {role} was not scanned; the scan "
                                 f"has {', '.join(labels)}", "minimum")
        floors[role] = label
    return floors


def hull(options) -> list:
    """Indices of the lower convex hull of (bits, error), from fewest bits to most, error
    falling: the only points a Lagrangian allocation ever picks."""
    order = sorted(range(len(options)), key=lambda i: (options[i][1], options[i][2]))
    front = []
    for i in order:  # the Pareto front: each next point has strictly less error
        if not front or options[i][2] < options[front[-1]][2]:
            if front and options[i][1] == options[front[-1]][1]:
                front.pop()
            front.append(i)
    out = []
    for i in front:  # convex: drop a point above the chord of its neighbours
        while len(out) >= 2:
            (b1, e1), (b2, e2) = options[out[-2]][1:], options[out[-1]][1:]
            b3, e3 = options[i][1:]
            if (e1 - e2) * (b3 - b2) <= (e2 - e3) * (b2 - b1):
                out.pop()
            else:
                break
        out.append(i)
    return out


def allocate(tensors, target_bits) -> Plan:
    """The plan for at most `target_bits` bits in all (see the module docstring)."""
    fixed = math.fsum(t.kept_bits for t in tensors if t.kept)
    free = [t for t in tensors if not t.kept]
    hulls = {t.name: hull(t.options) for t in free}
    choice = {t.name: hulls[t.name][0] for t in free}
    used = fixed + math.fsum(t.options[choice[t.name]][1] for t in free)
    if used > target_bits * (1 + 1e-12):
        smallest = used / max(sum(t.parameters for t in tensors), 1)
        raise QuantcalcError(f"the target is below the smallest plan the scanned formats allow "
                             f"({smallest:.4g} bits per weight, {size_text(used / 8)})", "target")
    # every hull upgrade, as (error saved per bit, tensor, from index, to index)
    upgrades = []
    for t in free:
        points = hulls[t.name]
        for a, b in zip(points, points[1:]):
            saved = t.options[a][2] - t.options[b][2]
            cost = t.options[b][1] - t.options[a][1]
            upgrades.append((saved / cost, t.name, a, b))
    upgrades.sort(key=lambda u: -u[0])  # stable: ties keep file order
    by_name = {t.name: t for t in free}
    taken = []  # (tensor, the choice it had) for each change, in order
    for _, name, a, b in upgrades:
        t = by_name[name]
        if choice[name] != a:
            continue  # an earlier step of this tensor was not taken
        cost = t.options[b][1] - t.options[a][1]
        if used + cost > target_bits:
            break  # the Lagrangian point: every total up to here is exactly optimal
        taken.append((name, a))
        choice[name] = b
        used += cost
    # fill what is left with the best single changes (any candidate, on the hull or not)
    while True:
        best = None
        for t in free:
            now_bits, now_error = t.options[choice[t.name]][1:]
            for i, (_, bits, error) in enumerate(t.options):
                extra = bits - now_bits
                if error < now_error and used + extra <= target_bits:
                    value = (now_error - error) / extra if extra > 0 else math.inf
                    if best is None or value > best[0]:
                        best = (value, t.name, i, extra)
        if best is None:
            break
        _, name, i, extra = best
        taken.append((name, choice[name]))
        choice[name] = i
        used += extra
    return _within(Plan(target_bits, choice, tensors), taken)


def _within(plan, taken) -> Plan:
    """The plan with its last changes undone while its exact total (fsum) exceeds the target:
    `used` above is a running sum, whose rounding must never cost the budget promise."""
    while taken and plan.bits > plan.target_bits:
        name, before = taken.pop()
        plan.choice[name] = before
    return plan


def target_bits(tensors, bpw=None, size=None) -> float:
    """Total bits for a target given as bits per weight or as a size in bytes."""
    if (bpw is None) == (size is None):
        raise QuantcalcError("give one target: bits per weight or a size", "target")
    params = sum(t.parameters for t in tensors)
    if bpw is not None:
        if not 0 < bpw <= 64:
            raise QuantcalcError("the target must be between 0 and 64 bits per weight", "target")
        return bpw * params
    if not (size > 0 and math.isfinite(size)):
        raise QuantcalcError("the target size must be positive", "target")
    return size * 8.0


def size_text(n_bytes) -> str:
    """A size in binary units, as the page writes sizes (one unit system everywhere)."""
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.4g} {unit}"
    return f"{n_bytes:.0f} bytes"


SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$", re.I)
UNITS = {"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "kib": 2 ** 10, "mib": 2 ** 20,
         "gib": 2 ** 30, "tib": 2 ** 40}


def parse_size(text) -> float:
    """'4GB', '3.5 GiB', '500MB' -> bytes."""
    match = SIZE.match(str(text))
    if not match:
        raise QuantcalcError(f"'{text}' is not a size such as 4GB or 3.5GiB", "target")
    return float(match.group(1)) * UNITS[(match.group(2) or "B").lower()]


def sweep(tensors, points=40) -> list:
    """(bits per weight, total error) of plans from the smallest to the largest possible size:
    the planner's curve for the figure."""
    params = sum(t.parameters for t in tensors)
    fixed = math.fsum(t.kept_bits for t in tensors if t.kept)
    low = fixed + math.fsum(min(o[1] for o in t.options) for t in tensors if not t.kept)
    high = fixed + math.fsum(max(o[1] for o in t.options) for t in tensors if not t.kept)
    out = []
    for k in range(points):
        budget = low + (high - low) * k / max(points - 1, 1)
        plan = allocate(tensors, budget * (1 + 1e-12))
        out.append((plan.bits / params, plan.error))
    return out
