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
    """The best time of each of `works`, run in turns (a, b, a, b, ...) after a warm-up: on a
    shared machine whose speed drifts from second to second, both sides of a ratio then see
    the same spells of slowness, and the best of each is taken from the same stretch of time."""
    for work in works:
        work()
    best = [float("inf")] * len(works)
    for _ in range(repeats):
        for i, work in enumerate(works):
            start = time.perf_counter()
            work()
            best[i] = min(best[i], time.perf_counter() - start)
    return best
