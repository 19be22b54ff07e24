"""Sweeps: conditions (a grid of config values) x seeds, trained in parallel, then evaluated.

A sweep is a YAML file (the reproductions in ``experiments/reproductions/`` are sweeps)::

    name: maze-diversity
    description: ...
    config: colormaze.yaml            # the base run config (relative to experiments/configs/)
    set: {total_timesteps: 250000}    # fixed overrides
    grid:                             # one condition per combination
      env_kwargs.cue_on_goal_prob: [1.0, 0.98, 0.9]
    seeds: 5
    evaluate: {distributions: [train, shifted], episodes: 500, references: [random]}
    knob: env_kwargs.cue_on_goal_prob # plot metrics against it
    checks: [...]                     # expected effects, reported PASS/FAIL
    quick: {seeds: 1, set: {total_timesteps: 100000}, episodes: 200}

Its folder::

    manifest.json         every run with its status (pending/running/done/failed, error)
    configs/<run>.yaml    the resolved config of each run
    runs/<condition>/seed<k>/   each run's folder (see goodhart.experiments.train)
    results.json, results.csv, report.md, bars.png, curves.png, knob.png

Each run trains in its own process (``goodhart train --config ... --resume``), at most
``workers`` at a time, one torch thread each; a crash or a killed process fails that run only.
Re-running the same sweep skips finished runs, resumes interrupted ones from their
checkpoints and retries failed ones up to ``max_attempts`` times.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tqdm import tqdm

from goodhart.agents.model_io import write_atomic
from goodhart.experiments.config import CONFIG_DIR, ConfigError, RunConfig, apply_override, dump, read_yaml, validate

REPRODUCTIONS_DIR = Path(__file__).parent / "reproductions"
STATUSES = ("pending", "running", "done", "failed")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvalSpec(_Strict):
    distributions: list[str] = Field(default_factory=lambda: ["train", "shifted"], min_length=1)
    episodes: int = Field(200, ge=1)
    level_seed: int = Field(10**6, ge=0)
    references: list[str] = Field(default_factory=lambda: ["random"])
    deterministic: bool = False


class Check(_Strict):
    """An expected effect: ``policy``'s ``metric`` on ``distribution`` compared (``op``) with
    ``value``, or with ``factor`` times another policy's (``than``) mean."""

    text: str
    policy: str
    distribution: str
    metric: str
    op: str = Field(pattern=r"^(>=|<=|>|<)$")
    value: float | None = None
    than: str | None = None
    factor: float = 1.0


class QuickSpec(_Strict):
    seeds: int = Field(1, ge=1)
    set: dict[str, Any] = Field(default_factory=dict)
    episodes: int | None = Field(None, ge=1)


class SweepSpec(_Strict):
    name: str
    description: str = ""
    config: str
    set: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict, description="condition -> display name")
    seeds: int = Field(5, ge=1)
    evaluate: EvalSpec = Field(default_factory=EvalSpec)
    knob: str | None = None
    knob_metrics: list[tuple[str, str]] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)
    quick: QuickSpec = Field(default_factory=QuickSpec)


@dataclass
class Run:
    """One training run of a sweep."""

    condition: str
    seed: int
    config: RunConfig
    folder: Path
    status: str = "pending"
    error: str = ""
    attempts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.condition}/seed{self.seed}"


def load_spec(path: Path) -> SweepSpec:
    data = read_yaml(path)
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {key}: {first['msg']}") from None


def reproduction_path(name: str) -> Path:
    path = REPRODUCTIONS_DIR / f"{name}.yaml"
    if not path.exists():
        names = sorted(p.stem for p in REPRODUCTIONS_DIR.glob("*.yaml"))
        raise ConfigError(f"unknown reproduction {name!r}; available: {names}")
    return path


def condition_name(assignment: dict[str, Any]) -> str:
    """``key=value`` pairs (last part of each dotted key), joined by commas; ``base`` if none."""
    return ",".join(f"{k.split('.')[-1]}={v}" for k, v in assignment.items()) or "base"


def expand(spec: SweepSpec, out: Path, quick: bool = False, seeds: int | None = None, source: str = "sweep") -> list[Run]:
    """Every (condition, seed) run of the sweep, each with its validated config."""
    base_path = Path(spec.config) if Path(spec.config).is_absolute() else CONFIG_DIR / spec.config
    base = read_yaml(base_path)
    n_seeds = seeds or (spec.quick.seeds if quick else spec.seeds)
    overrides = {**spec.set, **(spec.quick.set if quick else {})}
    keys = list(spec.grid)
    runs = []
    for values in itertools.product(*(spec.grid[k] for k in keys)) if keys else [()]:
        assignment = dict(zip(keys, values))
        condition = spec.labels.get(condition_name(assignment), condition_name(assignment))
        for seed in range(n_seeds):
            data = json.loads(json.dumps(base))
            for key, value in {**overrides, **assignment, "seed": seed}.items():
                apply_override(data, f"{key}={json.dumps(value)}", source)
            cfg = validate(data, f"{source} ({condition}, seed {seed})")
            runs.append(Run(condition, seed, cfg, out / "runs" / condition / f"seed{seed}", extra={"assignment": assignment}))
    return runs


class Manifest:
    """The sweep's runs and their status, in ``manifest.json`` (written atomically)."""

    def __init__(self, out: Path, runs: list[Run]) -> None:
        self.path = out / "manifest.json"
        self.runs = runs
        previous = json.loads(self.path.read_text())["runs"] if self.path.exists() else {}
        for run in runs:
            old = previous.get(run.id, {})
            run.attempts = old.get("attempts", 0)
            run.error = old.get("error", "")
            finished = (run.folder / "model.json").exists() and old.get("status") == "done"
            run.status = "done" if finished else ("failed" if old.get("status") == "failed" else "pending")
        self.save()

    def save(self) -> None:
        data = {
            "runs": {
                run.id: {"condition": run.condition, "seed": run.seed, "folder": str(run.folder), "status": run.status, "error": run.error, "attempts": run.attempts}
                for run in self.runs
            }
        }
        write_atomic(self.path, lambda tmp: tmp.write_text(json.dumps(data, indent=2)))


def run_local(runs: list[Run], manifest: Manifest, out: Path, workers: int, max_attempts: int) -> None:
    """Train the runs that are not done, ``workers`` processes at a time."""
    todo = [r for r in runs if r.status != "done" and r.attempts < max_attempts]
    (out / "configs").mkdir(parents=True, exist_ok=True)
    active: dict[str, tuple[Run, subprocess.Popen, Any]] = {}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with tqdm(total=len(runs), initial=len(runs) - len(todo), desc="runs", unit="run", dynamic_ncols=True) as bar:
        while todo or active:
            while todo and len(active) < workers:
                run = todo.pop(0)
                config_file = out / "configs" / f"{run.condition}_seed{run.seed}.yaml"
                write_atomic(config_file, lambda tmp, r=run: tmp.write_text(dump(r.config)))
                run.folder.parent.mkdir(parents=True, exist_ok=True)
                log = (run.folder.parent / f"seed{run.seed}.log").open("ab")
                cmd = [sys.executable, "-m", "goodhart.cli", "train", "--config", str(config_file), "--out", str(out / "runs"),
                       "--name", run.condition, "--resume", "--no-progress"]
                active[run.id] = (run, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log)
                run.status, run.attempts = "running", run.attempts + 1
                manifest.save()
            time.sleep(0.5)
            for run_id, (run, proc, log) in list(active.items()):
                code = proc.poll()
                if code is None:
                    continue
                log.close()
                del active[run_id]
                if code == 0 and (run.folder / "model.json").exists():
                    run.status, run.error = "done", ""
                else:
                    tail = (run.folder.parent / f"seed{run.seed}.log").read_text(errors="replace").strip().splitlines()[-1:] or [""]
                    run.status, run.error = "failed", f"exit code {code}: {tail[0]}"
                    if run.attempts < max_attempts:
                        todo.append(run)
                manifest.save()
                bar.update(run.status == "done")


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(yaml.safe_dump(data, sort_keys=False)))
