"""What the benchmark scripts share: the best of several timed runs after a warm-up."""

import time


def best_of(work, repeats=5):
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def side_by_side(works, repeats=7):
    """The best time of each of `works`, run in turns (a, b, a, b, ...), each timed run right
    after an untimed one of the same work. In turns: on a shared machine whose speed drifts
    from second to second, both sides of a ratio see the same spells of slowness. Warmed
    first: each side then starts from its own data in cache, not from what the other left
    (ggml's 16 MB of dequantized output pushes the values out of the last-level cache, so
    whichever ran second started cold: 0.6-1 ms of 18 measured on identical code)."""
    best = [float("inf")] * len(works)
    for _ in range(repeats):
        for i, work in enumerate(works):
            work()
            start = time.perf_counter()
            work()
            best[i] = min(best[i], time.perf_counter() - start)
    return best
