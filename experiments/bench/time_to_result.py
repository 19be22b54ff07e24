"""Section ``time_to_result``: wall time and peak memory of a reproduction (what ``goodhart
reproduce NAME`` runs, quick and full) in a process of its own, in a fresh folder. Minutes: run
only when asked for."""

from __future__ import annotations

import json
import multiprocessing
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from goodhart.experiments.bench.measure import BenchError, log, spread


def _reproduce(name: str, quick: bool, out: Path, log: Path) -> None:
    """The measured process: the reproduction with its output in ``log``; exit 1 if a check
    fails or a run failed."""
    from goodhart.experiments.engine import default_workers
    from goodhart.experiments.reproduce import load_reproduction, run_reproduction

    with log.open("w") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
    spec, path = load_reproduction(name)
    _, failed, checks = run_reproduction(spec, out, quick=quick, workers=default_workers(), source=str(path))
    sys.exit(1 if failed or not all(ok for _, ok in checks) else 0)


def time_reproduction(name: str, quick: bool) -> dict[str, Any]:
    """Wall time and peak RSS (of the largest process in its tree) of the reproduction, run in
    a fresh temporary folder so that nothing is skipped as already done."""
    folder = Path(tempfile.mkdtemp(prefix="goodhart-bench-reproduce-"))
    try:
        cmd = ["goodhart", "reproduce", name, *(["--quick"] if quick else [])]
        start = time.perf_counter()
        proc = multiprocessing.get_context("spawn").Process(target=_reproduce, args=(name, quick, folder / "out", folder / "log.txt"))
        proc.start()
        _, status, usage = os.wait4(proc.pid, 0)  # usage covers the process and its descendants
        wall = time.perf_counter() - start
        returncode = os.waitstatus_to_exitcode(status)
        log_lines = (folder / "log.txt").read_text().strip().splitlines()
        log_tail = log_lines[-20:]
        checks = [line for line in log_lines if line.startswith(("PASS: ", "FAIL: "))]
        results = folder / "out" / "results.json"
        sweep = json.loads(results.read_text()).get("sweep", {}) if results.exists() else {}
        if returncode not in (0, 1) or not results.exists():
            raise BenchError(f"goodhart reproduce {name}{' --quick' if quick else ''} failed (exit {returncode}):\n" + "\n".join(log_tail))
        peak = usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)
        mode = "quick" if quick else "full"
        return {
            "id": f"time_to_result/{name}/{mode}",
            "section": "time_to_result",
            "label": f"goodhart reproduce {name}{' --quick' if quick else ''}",
            "unit": "s",
            **spread([wall]),
            "train_seconds": sweep.get("train_seconds"),
            "checks_passed": returncode == 0,
            "checks": checks,
            "peak_rss_mib": peak,
            "command": shlex.join(cmd),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_time_to_result(name: str, modes: Sequence[str]) -> Iterator[dict[str, Any]]:
    for mode in modes:
        log(f"bench: goodhart reproduce {name} ({mode}); this takes minutes")
        yield time_reproduction(name, quick=mode == "quick")

__all__ = ["bench_time_to_result", "time_reproduction"]
