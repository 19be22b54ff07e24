"""Sweeps: seeds x conditions in parallel, aggregated; failures isolated; kill and resume;
the same on Ray's local mode."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from goodhart.cli import app
from goodhart.experiments.evaluate import read_results

TINY_RUN = """\
env: goodhart/ColorMaze-v0
n_envs: 4
total_timesteps: 256
checkpoint_freq: 128
ppo: {n_steps: 32, batch_size: 64, n_epochs: 1}
network: {channels: [4], strides: [1], features_dim: 8}
eval: {freq: 0, distributions: [train, shifted]}
"""


def sweep_file(tmp_path: Path, grid: str, seeds: str = "[0, 1]") -> Path:
    run = tmp_path / "tiny.yaml"
    run.write_text(TINY_RUN)
    spec = tmp_path / "sweep.yaml"
    spec.write_text(
        f"name: tiny\nconfig: {run}\ngrid:\n  {grid}\nseeds: {seeds}\n"
        "evaluate: {distributions: [train, shifted], episodes: 8, references: [random]}\n"
    )
    return spec


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())["runs"]


def test_local_sweep_aggregates_and_isolates_a_failing_run(tmp_path):
    """2 knob values x 2 seeds, plus a condition whose runs raise (no GPU here): the others
    finish, the failure is recorded with its error, the table and knob plot are written, and
    the command exits non-zero."""
    spec = sweep_file(tmp_path, "env_kwargs.cue_on_goal_prob: [1.0, 0.5]")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["sweep", str(spec), "--workers", "2", "--out", str(out), "--max-attempts", "1"])
    assert result.exit_code == 0, result.output
    runs = manifest(out)
    assert sorted(runs) == sorted(f"cue_on_goal_prob={p}/seed{s}" for p in (1.0, 0.5) for s in (0, 1))
    assert {r["status"] for r in runs.values()} == {"done"}
    record = read_results(out)
    assert set(record["policies"]) == {"cue_on_goal_prob=1.0", "cue_on_goal_prob=0.5", "random"}
    assert record["policies"]["cue_on_goal_prob=0.5"]["seeds"] == [0, 1]
    for name in ("report.md", "results.csv", "bars.png", "knob.png"):
        assert (out / name).exists(), name

    failing = CliRunner().invoke(app, ["sweep", str(tmp_path / "tiny.yaml"), "--grid", "device=cpu,cuda", "--seeds", "0", "--workers", "2", "--out", str(tmp_path / "bad"), "--max-attempts", "1"])
    assert failing.exit_code == 1
    assert "device=cuda/seed0" in failing.output and "failed" in failing.output
    runs = manifest(tmp_path / "bad")
    assert runs["device=cpu/seed0"]["status"] == "done"
    assert runs["device=cuda/seed0"]["status"] == "failed" and runs["device=cuda/seed0"]["error"]
    assert set(read_results(tmp_path / "bad")["policies"]) == {"device=cpu", "random"}


def test_killed_sweep_resumes_with_one_result_per_run(tmp_path):
    spec = sweep_file(tmp_path, "env_kwargs.cue_on_goal_prob: [1.0, 0.5]")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "goodhart.cli", "sweep", str(spec), "--workers", "1", "--out", str(out)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        if (out / "manifest.json").exists() and any(r["status"] == "done" for r in manifest(out).values()):
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and the run it was training
    proc.wait()
    done_before = {k for k, r in manifest(out).items() if r["status"] == "done"}
    assert 1 <= len(done_before) < 4
    first_models = {k: (out / "runs" / k / "model.safetensors").stat().st_mtime_ns for k in done_before}
    result = CliRunner().invoke(app, ["sweep", str(spec), "--workers", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    runs = manifest(out)
    assert {r["status"] for r in runs.values()} == {"done"} and len(runs) == 4
    for key in done_before:  # finished runs were skipped, not retrained
        assert (out / "runs" / key / "model.safetensors").stat().st_mtime_ns == first_models[key]
        assert runs[key]["attempts"] == 1
    rows = (out / "results.csv").read_text().splitlines()[1:]
    keys = [tuple(r.split(",")[:4]) for r in rows]
    assert len(keys) == len(set(keys))
    assert {k[:2] for k in keys if not k[0] == "random"} == {(f"cue_on_goal_prob={p}", str(s)) for p in (1.0, 0.5) for s in (0, 1)}


def test_ray_local_mode_runs_the_same_sweep(tmp_path):
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e '.[ray]'")
    spec = sweep_file(tmp_path, "env_kwargs.cue_on_goal_prob: [1.0, 0.5]", seeds="[0]")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["sweep", str(spec), "--backend", "ray", "--workers", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert {r["status"] for r in manifest(out).values()} == {"done"}
    assert (out / "runs" / "cue_on_goal_prob=0.5" / "seed0" / "model.safetensors").exists()
    assert set(read_results(out)["policies"]) == {"cue_on_goal_prob=1.0", "cue_on_goal_prob=0.5", "random"}
