"""Jobs and the manifest that remembers them across runs of the same command.

A :class:`Job` is one unit of work of a stage: a Python function and its argument, run in a
worker process. The :class:`Manifest` (``manifest.json`` in the experiment's folder) keeps
each job's status between invocations, so that a re-run skips what is finished, resumes what
was interrupted and retries what failed, up to a number of attempts.

Statuses: ``pending`` (to run), ``running``, ``done``, ``failed`` (the job itself raised or
its process died: counts as an attempt) and ``interrupted`` (stopped by Ctrl-C or ``kill``
of the command: not an attempt; resumed by a plain re-run).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from goodhart.agents.files import write_atomic, write_json

STATUSES = ("pending", "running", "done", "failed", "interrupted")


class Progress:
    """What a running job reports: environment steps done, written to a small file that the
    scheduler reads (so it works from any worker process, on Ray too), at most once a second,
    with a line in the job's log every tenth of the way. With a ``total``, the count reported
    never passes it: a training run collects whole rollouts, so it may end a little past the
    steps asked for (20,480 of 20,000), and "step 20480 of 20000" would read as a bug."""

    def __init__(self, path: str | os.PathLike[str], total: int = 0) -> None:
        self.path = Path(path)
        self.total = total
        self._written = 0.0
        self._logged_tenth = -1

    def __call__(self, done: int) -> None:
        if self.total:
            done = min(int(done), self.total)
        now = time.monotonic()
        if now - self._written >= 1.0:
            write_atomic(self.path, lambda tmp: tmp.write_text(str(int(done))))
            self._written = now
        if self.total:
            tenth = min(10, int(10 * done / self.total))
            if tenth > self._logged_tenth:
                self._logged_tenth = tenth
                print(f"step {done} of {self.total} ({10 * tenth} %)", flush=True)

    @staticmethod
    def read(path: Path) -> int:
        """The steps last reported at ``path`` (0: none yet)."""
        try:
            return int(path.read_text())
        except (OSError, ValueError):
            return 0


@dataclass
class Job:
    """One unit of work: ``stage(spec, progress)`` in a worker process.

    ``stage`` must be a module-level function (it is pickled by reference), ``spec`` its
    picklable argument. ``finished`` says, in the scheduling process, whether the job's output
    is already there as asked (then it is not run). ``steps``: the environment steps it takes,
    the progress display's unit (0: a job without steps, counted whole). ``meta``: what the
    manifest records beside the status (condition, seed, folder...)."""

    id: str
    stage: Callable[[Any, Progress], None]
    spec: Any
    log: Path
    finished: Callable[[], bool]
    steps: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    status: str = "pending"
    error: str = ""
    attempts: int = 0

    @property
    def progress_file(self) -> Path:
        return self.log.with_name(f".{self.log.stem}.progress")


class Manifest:
    """Every job's status, attempts and last error, in ``manifest.json`` (written atomically,
    after every change). Jobs of all stages of an experiment share one manifest."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / "manifest.json"
        self.entries: dict[str, dict[str, Any]] = json.loads(self.path.read_text())["runs"] if self.path.exists() else {}

    def track(self, jobs: Iterable[Job], max_attempts: int, retry_failed: bool = False) -> None:
        """Each job's status from its output and its previous entry: ``done`` if its output is
        there as asked; ``failed`` if it failed ``max_attempts`` times (``retry_failed``
        re-opens it with its attempts cleared); else ``pending``. A job that was done but is
        asked for more since (a raised budget) starts its attempts afresh."""
        for job in jobs:
            old = self.entries.get(job.id, {})
            job.attempts, job.error = old.get("attempts", 0), old.get("error", "")
            if job.finished():
                job.status = "done"
                job.attempts = max(job.attempts, 1) if old.get("status") == "done" else job.attempts
                job.error = ""
            elif old.get("status") == "done":
                job.status, job.attempts, job.error = "pending", 0, ""
            elif old.get("status") == "failed" and retry_failed:
                job.status, job.attempts = "pending", 0
            elif old.get("status") == "failed" and job.attempts >= max_attempts:
                job.status = "failed"
            else:
                job.status = "pending"
            self.record(job)
        self.save()

    def record(self, job: Job) -> None:
        self.entries[job.id] = {**job.meta, "status": job.status, "error": job.error, "attempts": job.attempts}

    def save(self) -> None:
        write_json(self.path, {"runs": self.entries})
