"""How a figure is measured: steps per second over a time budget, medians with their
spread, peak memory, and the progress messages."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any


class BenchError(RuntimeError):
    """A benchmark that cannot run; the message says why and what to do."""

def spread(values: Sequence[float]) -> dict[str, Any]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": list(values)}


def peak_rss_mib() -> float:
    """This process's peak resident set size (Linux reports KiB, macOS bytes)."""
    import resource  # POSIX only, like os.wait4 below

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024

def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)

def steps_per_second(step: Callable[[], None], batch: int, seconds: float, min_calls: int = 2) -> float:
    """Call ``step`` (advancing ``batch`` env steps) for at least ``seconds``; steps/s."""
    calls = 0
    start = time.perf_counter()
    while True:
        step()
        calls += 1
        elapsed = time.perf_counter() - start
        if calls >= min_calls and elapsed >= seconds:
            return calls * batch / elapsed


def measure_steps(step: Callable[[], None], batch: int, seconds: float, repeats: int) -> list[float]:
    steps_per_second(step, batch, seconds / 2)  # warm-up
    return [steps_per_second(step, batch, seconds) for _ in range(repeats)]

__all__ = ["BenchError", "log", "measure_steps", "peak_rss_mib", "spread", "steps_per_second"]
