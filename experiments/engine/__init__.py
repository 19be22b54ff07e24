"""The one experiment engine: every kind of experiment is stages of jobs on one scheduler.

A kind of experiment (a sweep, the reward-model study, and the kinds to come) is a spec and
the stages it runs: each stage is a list of :class:`~.jobs.Job` s, each a Python function and
its argument, run by :func:`~.scheduler.run_jobs` in worker processes on this machine or on
Ray. The scheduler owns what every kind needs alike: ``workers`` at a time, one torch thread
each, a log per job written as it goes, ``manifest.json`` (resume: finished jobs are skipped),
retries of jobs that fail, interruptions that are not failures (Ctrl-C or ``kill`` stops the
workers, records them as interrupted and a plain re-run resumes them), and one progress
display (environment steps of all jobs with an ETA, and which jobs run, are done or failed).
"""

from goodhart.experiments.engine.jobs import Job, Manifest
from goodhart.experiments.engine.scheduler import Interrupted, JobsFailed, run_jobs
from goodhart.experiments.engine.workers import Backend, LocalBackend, RayBackend, default_workers, make_backend

__all__ = ["Backend", "Interrupted", "Job", "JobsFailed", "LocalBackend", "Manifest", "RayBackend", "default_workers", "make_backend", "run_jobs"]
