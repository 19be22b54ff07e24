"""Section ``time_to_result``: wall time and peak memory of ``goodhart reproduce NAME`` (quick
and full) as a subprocess, in a fresh folder. Minutes: run only when asked for."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from goodhart.experiments.bench.measure import BenchError, log, spread


def time_reproduction(name: str, quick: bool) -> dict[str, Any]:
    """Wall time and peak RSS (of the largest process in its tree) of ``goodhart reproduce``,
    run in a fresh temporary folder so that nothing is skipped as already done."""
    folder = Path(tempfile.mkdtemp(prefix="goodhart-bench-reproduce-"))
    try:
        cmd = [sys.executable, "-m", "goodhart.cli", "reproduce", name, "--out", str(folder / "out")]
        if quick:
            cmd.append("--quick")
        with (folder / "log.txt").open("w") as log:
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)  # usage covers the process and its descendants
            wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
        log_lines = (folder / "log.txt").read_text().strip().splitlines()
        log_tail = log_lines[-20:]
        checks = [line for line in log_lines if line.startswith(("PASS: ", "FAIL: "))]
        results = folder / "out" / "results.json"
        sweep = json.loads(results.read_text()).get("sweep", {}) if results.exists() else {}
        if proc.returncode not in (0, 1) or not results.exists():
            raise BenchError(f"goodhart reproduce {name}{' --quick' if quick else ''} failed (exit {proc.returncode}):\n" + "\n".join(log_tail))
        peak = usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)
        mode = "quick" if quick else "full"
        return {
            "id": f"time_to_result/{name}/{mode}",
            "section": "time_to_result",
            "label": f"goodhart reproduce {name}{' --quick' if quick else ''}",
            "unit": "s",
            **spread([wall]),
            "train_seconds": sweep.get("train_seconds"),
            "checks_passed": proc.returncode == 0,
            "checks": checks,
            "peak_rss_mib": peak,
            "command": shlex.join(["goodhart", *cmd[3:5], *cmd[7:]]),  # without the temporary --out
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_time_to_result(name: str, modes: Sequence[str]) -> Iterator[dict[str, Any]]:
    for mode in modes:
        log(f"bench: goodhart reproduce {name} ({mode}); this takes minutes")
        yield time_reproduction(name, quick=mode == "quick")

__all__ = ["bench_time_to_result", "time_reproduction"]
