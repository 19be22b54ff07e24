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
import yaml
from typer.testing import CliRunner

from goodhart.cli import app
from goodhart.experiments.evaluate import read_results
from goodhart.experiments.sweep import expand, sweep_from_file

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


@pytest.mark.parametrize(
    "flags,named",
    [
        (["--grid", "env_kwargs.cue_on_goal_pro=1.0,0.9"], "--grid env_kwargs.cue_on_goal_pro=1.0,0.9"),
        (["--grid", "env_kwargs.cue_on_goal_prob=1.0,1.5"], "--grid env_kwargs.cue_on_goal_prob=1.0,1.5"),
        (["--set", "ppo.n_epoch=2"], "--set ppo.n_epoch=2"),
        (["--timesteps", "0"], "--timesteps"),
        (["--grid", "env_kwargs.cue_on_goal_prob=1.0,0.9", "--set", "env_kwargs.cue_on_goal_prob=0.5"], "--set env_kwargs.cue_on_goal_prob=0.5"),
    ],
)
def test_a_bad_sweep_flag_is_one_error_and_creates_nothing(tmp_path, flags, named):
    run = tmp_path / "tiny.yaml"
    run.write_text(TINY_RUN)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["sweep", str(run), *flags, "--out", str(out)])
    message = result.output.strip()
    assert result.exit_code == 2 and len(message.splitlines()) == 1, result.output
    assert message.startswith(f"error: {named}: ")
    assert not out.exists()


def test_a_bad_evaluation_in_a_sweep_file_creates_nothing(tmp_path):
    spec = sweep_file(tmp_path, "env_kwargs.cue_on_goal_prob: [1.0]")
    spec.write_text(spec.read_text().replace("references: [random]", "references: [random, oracle-nope]"))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["sweep", str(spec), "--out", str(out)])
    assert result.exit_code == 2 and "evaluate.references" in result.output and "oracle-nope" in result.output
    assert not out.exists()


def test_sweep_set_and_timesteps_apply_to_every_run(tmp_path):
    """Over the sweep file's own set: and quick: set:, before the grid and the seed."""
    spec = sweep_file(tmp_path, "env_kwargs.cue_on_goal_prob: [1.0, 0.5]")
    spec.write_text(spec.read_text() + "set: {ppo.n_epochs: 3}\nquick: {seeds: 1, set: {total_timesteps: 64}}\n")
    loaded, seeds, origins = sweep_from_file(spec, [], "0,1", ["ppo.n_epochs=2", "network.features_dim=4"], 128)
    assert origins["total_timesteps"] == "--timesteps" and origins["ppo.n_epochs"] == "--set ppo.n_epochs=2"
    for quick in (False, True):
        runs = expand(loaded, tmp_path / "out", quick=quick, seeds=seeds)
        assert len(runs) == 4 and not (tmp_path / "out").exists()
        for run in runs:
            assert (run.config.total_timesteps, run.config.ppo.n_epochs, run.config.network.features_dim) == (128, 2, 4)
        assert {r.config.env_kwargs["cue_on_goal_prob"] for r in runs} == {1.0, 0.5} and {r.seed for r in runs} == {0, 1}


def test_a_larger_timesteps_extends_a_finished_sweep(tmp_path):
    run = tmp_path / "tiny.yaml"
    run.write_text(TINY_RUN)
    out = tmp_path / "out"
    args = ["sweep", str(run), "--out", str(out), "--max-attempts", "1"]
    result = CliRunner().invoke(app, [*args, "--timesteps", "1.28e2"])
    assert result.exit_code == 0, result.output
    folder = out / "runs" / "base" / "seed0"
    assert yaml.safe_load((folder / "config.yaml").read_text())["total_timesteps"] == 128
    result = CliRunner().invoke(app, [*args, "--timesteps", "256"])
    assert result.exit_code == 0, result.output
    assert manifest(out)["base/seed0"]["status"] == "done" and manifest(out)["base/seed0"]["attempts"] == 1
    assert yaml.safe_load((folder / "config.yaml").read_text())["total_timesteps"] == 256
    assert "extending" in (folder.parent / "seed0.log").read_text()
    assert sorted((folder / "checkpoints").glob("step_*.pt"))[-1].name == "step_000000000256.pt"


LONGER_RUN = TINY_RUN.replace("total_timesteps: 256", "total_timesteps: 30000").replace("checkpoint_freq: 128", "checkpoint_freq: 1024")


def start_sweep(tmp_path: Path, out: Path) -> subprocess.Popen:
    """``goodhart sweep`` in a process group of its own, as a terminal runs a command."""
    run = tmp_path / "longer.yaml"
    run.write_text(LONGER_RUN)
    command = [sys.executable, "-m", "goodhart.cli", "sweep", str(run), "--seeds", "0,1", "--workers", "2", "--out", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)


def workers_of(pid: int) -> list[int]:
    """The engine's worker processes started by the scheduler ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"goodhart.experiments.engine.worker" in args and str(pid).encode() in args:
            found.append(int(entry.name))
    return found


def wait_until(condition, seconds: float = 300) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.2)


def training(out: Path) -> bool:
    """Both runs have started training: a checkpoint of each is written."""
    return all(list((out / "runs" / "base" / f"seed{s}" / "checkpoints").glob("step_*.pt")) for s in (0, 1))


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker processes in /proc")
def test_a_sweep_interrupted_twice_by_ctrl_c_finishes_on_a_plain_rerun(tmp_path):
    """Ctrl-C (SIGINT to the terminal's process group) stops the workers and records their
    runs as interrupted, not failed, with one line saying how to resume; twice over (more
    than max_attempts), then a plain re-run finishes every run from its checkpoint."""
    out = tmp_path / "out"
    for _ in range(2):
        proc = start_sweep(tmp_path, out)
        wait_until(lambda: training(out) and len(workers_of(proc.pid)) == 2)
        workers = workers_of(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        lines = [line for line in err.splitlines() if line.startswith("interrupted")]
        assert len(lines) == 1 and "run the same command again to resume" in lines[0], err
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
        runs = manifest(out)
        assert {r["status"] for r in runs.values()} == {"interrupted"} and {r["attempts"] for r in runs.values()} == {0}
    result = CliRunner().invoke(app, ["sweep", str(tmp_path / "longer.yaml"), "--seeds", "0,1", "--workers", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    runs = manifest(out)
    assert {r["status"] for r in runs.values()} == {"done"} and {r["attempts"] for r in runs.values()} == {1}
    assert "resuming" in (out / "runs" / "base" / "seed0.log").read_text()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker processes in /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_sweep_leaves_no_training_behind(tmp_path, sig):
    """``kill PID`` of the sweep's own process (SIGTERM: it stops its workers; SIGKILL: they
    die with it) leaves no worker running."""
    out = tmp_path / "out"
    proc = start_sweep(tmp_path, out)
    wait_until(lambda: len(workers_of(proc.pid)) == 2)
    workers = workers_of(proc.pid)
    os.kill(proc.pid, sig)
    proc.communicate(timeout=120)
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() and b"zombie" not in _state(pid) for pid in workers), seconds=30)
    if sig == signal.SIGTERM:
        assert proc.returncode == 130 and {r["status"] for r in manifest(out).values()} == {"interrupted"}


def _state(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/status").read_bytes().lower()
    except OSError:
        return b"zombie"


def test_failed_runs_are_retried_only_when_asked(tmp_path):
    """A run that failed its attempts is reported, not retried, by a plain re-run; with
    --retry-failed it is tried again (here it fails again, with its attempts counted afresh)."""
    run = tmp_path / "tiny.yaml"
    run.write_text(TINY_RUN.replace("n_envs: 4", "n_envs: 4\ndevice: cuda"))
    out = tmp_path / "out"
    args = ["sweep", str(run), "--out", str(out), "--max-attempts", "1"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 1 and "no run of tiny finished" in first.output and "--retry-failed" in first.output
    assert manifest(out)["base/seed0"]["attempts"] == 1
    log = out / "runs" / "base" / "seed0.log"
    size = log.stat().st_size
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1 and log.stat().st_size == size  # not tried again
    retried = CliRunner().invoke(app, [*args, "--retry-failed"])
    assert retried.exit_code == 1 and log.stat().st_size > size and manifest(out)["base/seed0"]["attempts"] == 1
