"""The one scheduler: runs a stage's jobs ``workers`` at a time, records every change in the
manifest, shows one progress display, and treats an interruption as what it is.

SIGINT (Ctrl-C) and SIGTERM (``kill``, a cluster scheduler) of the command stop its workers
and record their jobs as ``interrupted``: not failed attempts, resumed from their checkpoints
by a plain re-run (:class:`Interrupted` is raised). Only a job that itself errors or dies
counts as a failed attempt; it is retried while it has attempts left.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from goodhart.experiments.engine.jobs import Job, Manifest, Progress
from goodhart.experiments.engine.workers import Backend

POLL_SECONDS = 0.2
REDRAW_SECONDS = 5.0


class Interrupted(Exception):
    """The command was stopped by a signal; the jobs it was running are recorded as
    interrupted and resume on a re-run."""


class JobsFailed(RuntimeError):
    """A stage whose later stages cannot go on: some of its jobs failed every attempt."""


class _StopSignals:
    """While active, SIGINT and SIGTERM set :attr:`signal` instead of raising, so that the loop
    can stop its workers and record them (main thread only: elsewhere signals are not ours)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._catch)
        return self

    def _catch(self, signum: int, frame: Any) -> None:
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class _Display:
    """One progress bar for a stage: environment steps done of the total (jobs, for a stage
    without steps) with an ETA, and how many jobs run, are done and failed."""

    def __init__(self, title: str, jobs: Sequence[Job]) -> None:
        self.jobs = jobs
        self.by_steps = any(job.steps for job in jobs)
        total = sum(job.steps for job in jobs) if self.by_steps else len(jobs)
        self.bar = tqdm(total=total, desc=title, unit="step" if self.by_steps else "job", unit_scale=self.by_steps,
                        dynamic_ncols=True, file=sys.stderr)
        self.postfix, self.drawn = "", 0.0

    def _done(self, job: Job) -> int:
        if job.status == "done":
            return job.steps if self.by_steps else 1
        if job.status == "running" and self.by_steps:
            return min(job.steps, Progress.read(job.progress_file))
        return 0

    def update(self, force: bool = False) -> None:
        """Redraw when the jobs' statuses changed, or the steps at most every few seconds (a
        log file gets a line per redraw)."""
        counts = {s: sum(job.status == s for job in self.jobs) for s in ("running", "done", "failed")}
        postfix = f"running {counts['running']} · done {counts['done']}/{len(self.jobs)} · failed {counts['failed']}"
        done = sum(self._done(job) for job in self.jobs)
        now = time.monotonic()
        if force or postfix != self.postfix or (done != self.bar.n and now - self.drawn >= REDRAW_SECONDS):
            self.bar.n, self.postfix, self.drawn = done, postfix, now
            self.bar.set_postfix_str(postfix, refresh=False)
            self.bar.refresh()

    def write(self, line: str) -> None:
        self.bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self.update(force=True)
        self.bar.close()


def run_jobs(
    jobs: Sequence[Job],
    manifest: Manifest,
    backend: Backend,
    *,
    title: str,
    max_attempts: int = 2,
    retry_failed: bool = False,
) -> list[Job]:
    """Run the jobs that are not done, ``backend.workers`` at a time, retrying failures up to
    ``max_attempts`` tries each; returns the jobs that failed every attempt. Raises
    :class:`Interrupted` after stopping the workers if the command gets SIGINT or SIGTERM."""
    manifest.track(jobs, max_attempts, retry_failed)
    todo = [job for job in jobs if job.status == "pending"]
    active: dict[str, tuple[Job, Any]] = {}
    display = _Display(title, jobs)
    with _StopSignals() as stop:
        try:
            while (todo or active) and stop.signal is None:
                while todo and len(active) < backend.workers and stop.signal is None:
                    job = todo.pop(0)
                    job.progress_file.unlink(missing_ok=True)
                    active[job.id] = (job, backend.start(job))
                    job.status = "running"
                    manifest.record(job)
                    manifest.save()
                time.sleep(POLL_SECONDS)
                for job_id, (job, handle) in list(active.items()):
                    result = backend.poll(handle)
                    if result is None or stop.signal is not None:
                        continue
                    del active[job_id]
                    ok, error = result
                    job.attempts += 1
                    if ok and job.finished():
                        job.status, job.error = "done", ""
                    else:
                        job.status, job.error = "failed", error or "the job ended without its output"
                        display.write(f"{job.id} failed (attempt {job.attempts} of {max_attempts}): {job.error}")
                        if job.attempts < max_attempts:
                            todo.append(job)
                    job.progress_file.unlink(missing_ok=True)
                    manifest.record(job)
                    manifest.save()
                display.update()
        finally:
            if active:  # interrupted, or the scheduler itself failed: stop the workers
                backend.stop([handle for _, handle in active.values()])
                for job, _ in active.values():
                    job.status = "interrupted"
                    manifest.record(job)
                manifest.save()
            display.close()
    if stop.signal is not None:
        name = signal.Signals(stop.signal).name
        raise Interrupted(f"{name}: {len(active)} job(s) of {title} stopped and recorded as interrupted")
    return [job for job in jobs if job.status == "failed"]
