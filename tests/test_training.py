"""The training pipeline: configs, run folders, determinism, resume, and that PPO learns."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from goodhart.agents.model_io import load_policy
from goodhart.agents.policies import ModelPolicy, OraclePolicy, run_episodes
from goodhart.cli import app
from goodhart.experiments.config import CONFIG_DIR
from goodhart.experiments.metrics import summarize
from goodhart.experiments.seeds import EVAL_LEVEL_SEED

TINY = [
    "--set", "n_envs=4",
    "--set", "ppo.n_steps=64",
    "--set", "ppo.batch_size=128",
    "--set", "ppo.n_epochs=2",
    "--set", "eval.episodes=8",
]


def goodhart(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def test_train_writes_the_documented_run_folder(tmp_path):
    code, out = goodhart("train", "--env", "goodhart/LoopRace-v0", "--timesteps", "1024", "--out", str(tmp_path),
                         "--set", "eval.freq=512", "--no-progress", *TINY)
    assert code == 0, out
    run = tmp_path / "looprace" / "seed0"
    for name in ("config.yaml", "episodes.csv", "eval.csv", "model.safetensors", "model.json"):
        assert (run / name).is_file(), name
    assert list((run / "checkpoints").glob("step_*.pt"))
    assert list(run.glob("tb_1/events.out.tfevents.*"))
    eval_rows = (run / "eval.csv").read_text().splitlines()
    assert eval_rows[0].startswith("timestep,distribution,") and len(eval_rows) == 1 + 2 * 2  # at 512 and at the end
    assert load_policy(run / "model").env_id == "goodhart/LoopRace-v0"


def test_resolved_config_repeats_the_run(tmp_path):
    args = ["--timesteps", "256", "--no-progress", "--set", "eval.freq=0", *TINY]
    assert goodhart("train", "--env", "goodhart/ColorMaze-v0", "--out", str(tmp_path / "a"), *args)[0] == 0
    saved = tmp_path / "a" / "colormaze" / "seed0" / "config.yaml"
    code, out = goodhart("train", "--config", str(saved), "--out", str(tmp_path / "b"), "--no-progress")
    assert code == 0, out
    again = tmp_path / "b" / "config" / "seed0"
    assert (again / "config.yaml").read_text() == saved.read_text()
    first, second = weights(saved.parent), weights(again)
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    args = ["--env", "goodhart/CornerMaze-v0", "--timesteps", "512", "--no-progress", "--set", "eval.freq=0", *TINY]
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert goodhart("train", *args, "--seed", seed, "--name", name, "--out", str(tmp_path))[0] == 0
    a, b, c = (weights(tmp_path / n / f"seed{s}") for n, s in (("a", 3), ("b", 3), ("c", 4)))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize(
    "schedule",
    [[], ["--set", "ppo.ent_coef_final=0.0"], ["--set", "env_kwargs.obs_mode=rgb"]],
    ids=["constant", "entropy-schedule", "pixels"],
)
def test_resume_after_sigkill_ends_where_an_uninterrupted_run_ends(tmp_path, schedule):
    """Kill a run with SIGKILL after its first checkpoint; --resume finishes it with the same
    step count and, since checkpoints hold the whole state, the same weights (an entropy
    schedule included: it follows the step count, not the process; pixels too: the restored
    observations are the env's, as the network takes them)."""
    args = ["--env", "goodhart/ColorMaze-v0", "--timesteps", "2048", "--no-progress", "--set", "checkpoint_freq=512",
            "--set", "eval.freq=0", *TINY, *schedule]
    assert goodhart("train", *args, "--out", str(tmp_path / "whole"))[0] == 0
    killed = tmp_path / "killed" / "colormaze" / "seed0"
    proc = subprocess.Popen([sys.executable, "-m", "goodhart.cli", "train", *args, "--out", str(tmp_path / "killed")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list((killed / "checkpoints").glob("step_*.pt")) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "model.safetensors").exists(), "the run finished before it was killed"
    code, out = goodhart("train", *args, "--out", str(tmp_path / "killed"), "--resume")
    assert code == 0, out
    resumed, whole = load_policy(killed / "model"), weights(tmp_path / "whole" / "colormaze" / "seed0")
    assert int(sorted((killed / "checkpoints").glob("step_*.pt"))[-1].stem.split("_")[1]) == 2048
    assert all(torch.equal(weights(killed)[k], whole[k]) for k in whole)
    assert resumed.env_id == "goodhart/ColorMaze-v0"
    steps = [int(line.split(",")[0]) for line in (killed / "episodes.csv").read_text().splitlines()[1:]]
    assert steps == sorted(steps)  # rows past the checkpoint were dropped before resuming


def checkpoints(run: Path) -> list[Path]:
    return sorted((run / "checkpoints").glob("step_*.pt"))


RESUMABLE = ["--env", "goodhart/ColorMaze-v0", "--no-progress", "--set", "checkpoint_freq=256", "--set", "eval.freq=0", *TINY]


def test_resume_skips_a_truncated_newest_checkpoint(tmp_path):
    """A damaged newest checkpoint is named in one warning line and the run continues from the
    next older one, to the same weights as the intact run; with none readable, one error line."""
    args = [*RESUMABLE, "--timesteps", "1024", "--out", str(tmp_path)]
    assert goodhart("train", *args)[0] == 0
    run = tmp_path / "colormaze" / "seed0"
    intact = weights(run)
    newest, older = checkpoints(run)[-1], checkpoints(run)[-2]
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    code, out = goodhart("train", *args, "--resume")
    assert code == 0, out
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(newest) in warnings[0] and "Traceback" not in out
    assert f"from step {int(older.stem.split('_')[1])}" in out
    assert all(torch.equal(weights(run)[k], intact[k]) for k in intact)
    for path in checkpoints(run):
        path.write_bytes(b"not a checkpoint")
    code, out = goodhart("train", *args, "--resume")
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "none of its 3 checkpoints is readable" in errors[0]


def test_a_killed_checkpoint_write_leaves_nothing_under_its_name(tmp_path):
    """The write goes to a temporary file renamed at the end: a writer killed midway leaves the
    final name absent (or the previous file whole), never a part; the leftover is not listed."""
    from goodhart.agents.checkpoint import list_checkpoints

    target = tmp_path / "checkpoints" / "step_000000000512.pt"
    script = (
        "import sys, time\nfrom pathlib import Path\nfrom goodhart.agents.files import write_atomic\n"
        "def write(tmp):\n    tmp.write_bytes(b'x' * 100000)\n    print('written', flush=True)\n    time.sleep(60)\n"
        f"write_atomic(Path({str(target)!r}), write)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "written"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not target.exists() and list_checkpoints(target.parent) == []
    assert [p.name.startswith(".step_") for p in target.parent.iterdir()] == [True]  # the killed write's temporary file


def test_resume_refuses_a_run_that_does_not_exist(tmp_path):
    args = [*RESUMABLE, "--timesteps", "256", "--out", str(tmp_path / "runs"), "--name", "typo"]
    code, out = goodhart("train", *args, "--resume")
    message = out.strip()
    assert code == 2 and len(message.splitlines()) == 1
    assert str(tmp_path / "runs" / "typo" / "seed0") in message and "--resume-or-start" in message
    assert not (tmp_path / "runs").exists()
    code, out = goodhart("train", *args, "--resume-or-start")
    assert code == 0, out
    assert (tmp_path / "runs" / "typo" / "seed0" / "model.safetensors").exists()
    code, out = goodhart("train", *args, "--resume-or-start")  # finished: nothing left to train
    assert code == 0 and "resuming" in out


def test_a_finished_run_can_be_extended(tmp_path):
    """--resume with a larger --timesteps continues a finished run and records the new budget;
    the entropy schedule stays on the steps it was planned over, so the extended run equals a
    run trained from scratch with its recorded config.yaml. Shrinking or other changes are refused."""
    args = [*RESUMABLE, "--set", "ppo.ent_coef_final=0.0", "--out", str(tmp_path)]
    assert goodhart("train", *args, "--timesteps", "512")[0] == 0
    run = tmp_path / "colormaze" / "seed0"
    code, out = goodhart("train", *args, "--timesteps", "1024", "--resume")
    assert code == 0, out
    extending = [line for line in out.splitlines() if line.startswith("extending")]
    assert len(extending) == 1 and "from 512 to 1024 steps" in extending[0] and "first 512 steps" in extending[0]
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["total_timesteps"] == 1024 and saved["ppo"]["ent_coef_anneal_steps"] == 512
    assert int(checkpoints(run)[-1].stem.split("_")[1]) == 1024
    code, out = goodhart("train", "--config", str(run / "config.yaml"), "--out", str(tmp_path / "again"), "--no-progress")
    assert code == 0, out
    again = weights(tmp_path / "again" / "config" / "seed0")
    assert all(torch.equal(weights(run)[k], again[k]) for k in again)
    code, out = goodhart("train", *args, "--timesteps", "1024", "--resume")  # the same request again: nothing to do
    assert code == 0 and "extending" not in out
    code, out = goodhart("train", *args, "--timesteps", "512", "--resume")
    assert code == 2 and "can be extended, not shortened" in out
    code, out = goodhart("train", *args, "--timesteps", "2048", "--resume", "--set", "ppo.gamma=0.9")
    assert code == 2 and "ppo differ" in out
    assert yaml.safe_load((run / "config.yaml").read_text())["total_timesteps"] == 1024  # refused: unchanged


def test_entropy_schedule_anneals_linearly_over_the_run(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    code, out = goodhart("train", "--env", "goodhart/ColorMaze-v0", "--timesteps", "1024", "--no-progress", "--out",
                         str(tmp_path), "--set", "eval.freq=0", "--set", "ppo.ent_coef=0.04", "--set",
                         "ppo.ent_coef_final=0.0", *TINY)
    assert code == 0, out
    events = EventAccumulator(str(next((tmp_path / "colormaze" / "seed0").glob("tb_1"))))
    events.Reload()
    used = [event.value for event in events.Scalars("train/ent_coef")]
    assert used == pytest.approx([0.03, 0.02, 0.01, 0.0])  # set before each of the 4 updates (256 steps each)


def test_existing_run_needs_resume(tmp_path):
    args = ["--env", "goodhart/ColorMaze-v0", "--timesteps", "256", "--no-progress", "--out", str(tmp_path), "--set", "eval.freq=0", *TINY]
    assert goodhart("train", *args)[0] == 0
    code, out = goodhart("train", *args)
    assert code != 0 and "--resume" in out


@pytest.mark.parametrize(
    "content,key",
    [
        ("env: goodhart/ColorMaze-v0\nppo:\n  learnig_rate: 0.1\n", "ppo.learnig_rate"),
        ("env: goodhart/ColorMaze-v0\nn_envs: many\n", "n_envs"),
        ("env: goodhart/ColorMaze-v0\nppo:\n  gamma: 1.5\n", "ppo.gamma"),
        ("env: goodhart/ColorMaze-v0\nenv_kwargs:\n  size: 1\n", "size"),
        ("env: goodhart/ColorMaze-v0\nenv_kwargs:\n  colour: red\n", "env_kwargs.colour"),
        ("env: goodhart/Nope-v0\n", "env"),
        ("env: goodhart/ColorMaze-v0\neval:\n  distributions: [mars]\n", "eval.distributions"),
        ("env: goodhart/ColorMaze-v0\nnetwork:\n  tile: 4\n", "network.tile"),  # pixels only
        ("env: goodhart/ColorMaze-v0\nnetwork:\n  tile_channels: 8\n", "network.tile_channels"),
        ("env: goodhart/ColorMaze-v0\nenv_kwargs:\n  obs_mode: rgb\nnetwork:\n  tile: 3\n", "network.tile"),  # 4 % 3
        ("env: [unclosed\n", "YAML"),
    ],
)
def test_config_errors_are_one_clear_line_and_create_nothing(tmp_path, content, key):
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    code, out = goodhart("train", "--config", str(bad), "--out", str(tmp_path / "runs"))
    assert code != 0
    message = out.strip()
    assert len(message.splitlines()) == 1 and str(bad) in message and key in message
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "flags,named,key",
    [
        (["--timesteps", "-100"], "--timesteps", "total_timesteps"),
        (["--n-envs", "0"], "--n-envs", "n_envs"),
        (["--seed", "-1"], "--seed", "seed"),
        (["--set", "ppo.n_epochs=0"], "--set ppo.n_epochs=0", "ppo.n_epochs"),
        (["--set", "ppo.learnig_rate=0.1"], "--set ppo.learnig_rate=0.1", "ppo.learnig_rate"),
        (["--set", "env_kwargs.size=1"], "--set env_kwargs.size=1", "size"),
        (["--set", "eval.distributions=[mars]"], "--set eval.distributions=[mars]", "eval.distributions"),
    ],
)
def test_errors_from_flags_name_the_flag_not_the_shipped_file(tmp_path, flags, named, key):
    code, out = goodhart("train", "--env", "goodhart/ColorMaze-v0", *flags, "--out", str(tmp_path / "r"))
    message = out.strip()
    assert code == 2 and len(message.splitlines()) == 1, out
    assert message.startswith(f"error: {named}: ") and key in message and "colormaze.yaml" not in message
    assert not (tmp_path / "r").exists()


def test_whole_numbers_may_be_written_as_1e5(tmp_path):
    from goodhart.cli import whole_number

    assert whole_number("1e5") == 100_000 and whole_number("100_000") == 100_000 and whole_number("2.5e3") == 2500
    code, out = goodhart("train", "--env", "goodhart/ColorMaze-v0", "--timesteps", "2.56e2", "--n-envs", "4e0", "--seed", "1e0",
                         "--out", str(tmp_path), "--no-progress", "--set", "eval.freq=0", "--set", "ppo.n_steps=64",
                         "--set", "ppo.batch_size=128", "--set", "ppo.n_epochs=1")
    assert code == 0, out
    saved = yaml.safe_load((tmp_path / "colormaze" / "seed1" / "config.yaml").read_text())
    assert (saved["total_timesteps"], saved["n_envs"], saved["seed"]) == (256, 4, 1)
    code, out = goodhart("train", "--env", "goodhart/ColorMaze-v0", "--timesteps", "1.5e0", "--out", str(tmp_path / "x"))
    assert code == 2 and "whole number" in out and not (tmp_path / "x").exists()


def test_every_shipped_config_is_valid():
    from goodhart.experiments.config import read_yaml, validate

    configs = sorted(CONFIG_DIR.glob("*.yaml"))
    assert len(configs) >= 4
    for path in configs:
        validate(read_yaml(path), str(path))


def test_help_explains_every_option():
    code, out = goodhart("train", "--help")
    assert code == 0
    for option in ("--env", "--config", "--set", "--timesteps", "--seed", "--n-envs", "--out", "--resume", "--resume-or-start"):
        assert option in out


@pytest.mark.slow
def test_ppo_learns_the_training_mazes(tmp_path):
    """The shipped ColorMaze config, at three quarters of its budget (300k of 400k steps; at
    200k it reached 0.87), reaches the goal in >= 90 % of fixed training levels. Slow (about
    3.5 minutes on 2 cores): fewer steps leave no margin above the threshold."""
    code, out = goodhart("train", "--env", "goodhart/ColorMaze-v0", "--timesteps", "300000", "--out", str(tmp_path),
                         "--set", "eval.freq=0", "--no-progress")
    assert code == 0, out
    model = load_policy(tmp_path / "colormaze" / "seed0" / "model")
    outcomes = run_episodes(ModelPolicy(model), model.env_id, model.config["env_kwargs"], distribution="train",
                            episodes=200, level_seed=EVAL_LEVEL_SEED)
    assert summarize(outcomes)["reached_goal"] >= 0.9


@pytest.mark.slow
@pytest.mark.parametrize("config, reward", [("looprace.yaml", "score"), ("looprace_progress.yaml", "progress")])
def test_ppo_on_the_race_farms_the_score_or_races(tmp_path, config, reward):
    """The shipped LoopRace configs, cut to 400k of their 500k steps: trained on the score the
    agent has raced, then turned to farming the lagoon (never finishes, out-scores the optimal
    racer as race-gaming's check asks, by 1.2 times); trained on lap progress it finishes the
    race. Measured by race-gaming's quick mode (seed 0, 400k steps): score 76 against the
    racer's 53, finish 0.00 (the lagoon is stocked from the third lap, so less of the episode
    is left to farm than when it was stocked from the second, and the scores were 158);
    trained on progress, finish 1.00."""
    code, out = goodhart("train", "--config", str(CONFIG_DIR / config), "--timesteps", "400000", "--out", str(tmp_path),
                         "--name", reward, "--set", "eval.freq=0", "--no-progress")
    assert code == 0, out
    model = load_policy(tmp_path / reward / "seed0" / "model")

    def means(policy):
        return summarize(run_episodes(policy, model.env_id, model.config["env_kwargs"], distribution="train",
                                      episodes=50, level_seed=EVAL_LEVEL_SEED))

    trained = means(ModelPolicy(model))
    if reward == "score":
        racer = means(OraclePolicy("racer"))
        assert trained["finished"] <= 0.05 and trained["score"] >= 1.2 * racer["score"], (trained, racer)
    else:
        assert trained["finished"] >= 0.9, trained
