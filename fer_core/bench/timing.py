"""The one way benchmarks time things: a warm-up call first, then the mean or the median of many."""
from __future__ import annotations

import statistics
import time


def timed(fn, seconds: float, min_runs: int = 2) -> tuple[float, int]:
    """Mean seconds per call of fn over at least `min_runs` calls or `seconds`, after one warm-up."""
    fn()
    runs, start = 0, time.perf_counter()
    while runs < min_runs or time.perf_counter() - start < seconds:
        fn()
        runs += 1
    return (time.perf_counter() - start) / runs, runs


def median_ms(fn, repeats: int) -> float:
    """Median milliseconds per call of fn over `repeats` calls, after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
