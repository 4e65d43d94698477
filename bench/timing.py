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
