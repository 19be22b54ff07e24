"""Where jobs run: a process each on this machine, or a task each on Ray.

Every job runs with one torch thread (small policies are fastest so, and parallel work is
processes), its output going to its log as it is written. A local worker is started in its own
session, so a Ctrl-C in the terminal reaches only the scheduler, which then stops its workers
itself and records them as interrupted; and it dies with the scheduler (Linux's parent-death
signal), so a killed scheduler leaves no training behind.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Protocol

from goodhart.experiments.config import ConfigError
from goodhart.experiments.engine.jobs import Job

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # torch's thread pools, set before it loads
STOP_GRACE_SECONDS = 10.0


class Backend(Protocol):
    workers: int

    def start(self, job: Job) -> Any:
        """Start ``job``; a handle to poll."""

    def poll(self, handle: Any) -> tuple[bool, str] | None:
        """None while the job runs; then (succeeded, error)."""

    def stop(self, handles: list[Any]) -> None:
        """Stop the running jobs and wait for them to end."""


def last_line(log: Path) -> str:
    lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    return lines[-1] if lines else ""


class LocalBackend:
    """Each job in its own Python process (:mod:`goodhart.experiments.engine.worker`), the job
    handed over on its standard input."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.env = {**os.environ, **ONE_THREAD}

    def start(self, job: Job) -> Any:
        job.log.parent.mkdir(parents=True, exist_ok=True)
        with job.log.open("ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "goodhart.experiments.engine.worker", str(os.getpid())], stdin=subprocess.PIPE,
                                    stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        proc.stdin.write(pickle.dumps((job.stage, job.spec, str(job.progress_file), job.steps)))
        proc.stdin.close()
        return proc, job.log

    def poll(self, handle: Any) -> tuple[bool, str] | None:
        proc, log = handle
        code = proc.poll()
        if code is None:
            return None
        return (True, "") if code == 0 else (False, f"exit code {code}: {last_line(log)}")

    def stop(self, handles: list[Any]) -> None:
        procs = [proc for proc, _ in handles]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for proc in procs:
                if proc.poll() is None:
                    try:
                        os.killpg(proc.pid, sig)
                    except ProcessLookupError:
                        pass
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
                time.sleep(0.05)


def _run_on_ray(stage: Any, spec: Any, log: str, progress_file: str, steps: int) -> None:
    """A job inside a Ray worker: one torch thread, its output appended to its log."""
    import contextlib

    from goodhart.agents.ppo import set_torch_threads
    from goodhart.experiments.engine.jobs import Progress

    set_torch_threads(1)
    with open(log, "a", buffering=1) as handle, contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
        stage(spec, Progress(progress_file, steps))


class RayBackend:
    """Each job as a Ray task (one CPU) on whichever node Ray picks. The experiment's folder
    must be on a filesystem every node sees (the head's local disk for a one-machine Ray)."""

    def __init__(self, workers: int, address: str | None) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--backend ray needs Ray: pip install -e '.[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": ONE_THREAD})
        self.workers = workers
        self.remote = ray.remote(num_cpus=1, max_retries=0)(_run_on_ray)

    def start(self, job: Job) -> Any:
        job.log.parent.mkdir(parents=True, exist_ok=True)
        return self.remote.remote(job.stage, job.spec, str(job.log), str(job.progress_file), job.steps)

    def poll(self, handle: Any) -> tuple[bool, str] | None:
        ready, _ = self.ray.wait([handle], timeout=0)
        if not ready:
            return None
        try:
            self.ray.get(handle)
        except Exception as err:  # the job raised, or its worker or node died
            cause = getattr(err, "cause", None) or err
            text = str(cause).strip().splitlines()
            return False, f"{type(cause).__name__}: {text[-1] if text else ''}"
        return True, ""

    def stop(self, handles: list[Any]) -> None:
        for ref in handles:
            self.ray.cancel(ref, force=True)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while handles and time.monotonic() < deadline:
            _, handles = self.ray.wait(handles, num_returns=len(handles), timeout=0.1)


def make_backend(name: str, workers: int, address: str | None = None) -> Backend:
    if name == "local":
        return LocalBackend(workers)
    if name == "ray":
        return RayBackend(workers, address)
    raise ConfigError(f"--backend {name!r} is not allowed; expected local or ray")


def default_workers() -> int:
    """The cores this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
