"""How often each framework convention gives the framework's own codes and scales: every
setting the framework offers (tests/support/convention_cases.py) on generated tensors (normal,
heavy-tailed, exact ties, 1e-6 and 1e30 magnitudes, one-sided) and two real MiniLM weights,
against torch / onnxruntime / ModelOpt / torchao themselves. Prints one line per framework and
setting: cases, codes identical (%), scales identical (%), zero points identical (%).

    python bench/conventions_agreement.py [--tensors N]
"""

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "py")]
warnings.filterwarnings("ignore")

from tests.support import corpus  # noqa: E402
from tests.support.convention_cases import CASES, compare, name  # noqa: E402


def generated(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        shape = (int(rng.integers(2, 8)), int(rng.integers(8, 200)))
        kind = i % 4
        if kind == 0:  # ties: half steps of 2^e with the amax on 127 / 127.5 / 7 / 7.5 steps
            x = rng.integers(-255, 256, shape) / 2.0
            x.flat[0] = rng.choice([127, 127.5, 7, 7.5])
            x *= 2.0 ** int(rng.integers(-30, 30))
        else:
            x = rng.standard_normal(shape) if kind != 2 else rng.standard_t(2, shape)
            x *= rng.choice([1e-6, 1e-3, 1.0, 1e3, 1e30])
            if kind == 3:
                x = np.abs(x)
        out.append(x.astype(np.float32))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tensors", type=int, default=40)
    args = parser.parse_args()
    tensors = generated(args.tensors)
    try:
        from quantcalc.readers import checkpoint
        path = str(corpus.corpus_file("minilm-safetensors"))
        tensors += [checkpoint.read_tensor(path, t) for t in (
            "encoder.layer.0.intermediate.dense.weight", "encoder.layer.0.output.dense.weight")]
    except Exception as exc:  # no corpus: generated tensors only
        print(f"(MiniLM weights unavailable: {exc})")
    print(f"{'framework':<12} {'setting':<78} {'cases':>5} {'codes %':>9} {'scales %':>9} "
          f"{'zp %':>9}")
    for framework, cases in CASES.items():
        for case in cases:
            heavy = case.get("calibration") in ("entropy", "mse") and framework == "tensorrt"
            # PyTorch's HistogramObserver (mse) runs on every tensor: torch's own search takes
            # seconds at most per tensor
            chosen = tensors[::4] + tensors[-2:] if heavy else tensors
            codes = scales = zero_points = values = segments = 0
            for x in chosen:
                ours, theirs = compare(x, case)
                codes += int((ours[0] == theirs[0]).sum())
                values += ours[0].size
                scales += int((ours[1] == theirs[1]).sum())
                zero_points += int((ours[2] == theirs[2]).sum())
                segments += ours[1].size
            print(f"{framework:<12} {name(case):<78} {len(chosen):>5} "
                  f"{100 * codes / values:>9.4f} {100 * scales / segments:>9.4f} "
                  f"{100 * zero_points / segments:>9.4f}", flush=True)


if __name__ == "__main__":
    main()
