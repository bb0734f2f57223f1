"""Timing helpers shared by the benchmark scripts (run them as ``python benchmarks/x.py``)."""

from __future__ import annotations

import time


def best_of(fn, repeat: int = 3):
    """``(fastest wall time of `repeat` calls, the last call's result)``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out
