"""The benchmarks' one timing rule: the median of repeated calls after a warm-up (compilation) call."""

from __future__ import annotations

import statistics
import time


def median_time(fn, repeats: int) -> float:
    """Seconds per call of ``fn``: one warm-up call, then the median of ``repeats`` timed calls."""
    fn()  # warm-up / compile
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)
