"""What a new user meets in their first hour: help that reads at 80 columns, YAML values that
mean what the knob expects, a policy given as a run folder, a seed folder or a file, progress
bars that stop at their total, arguments refused before any progress is drawn, and YAML
errors that say where."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from goodhart.agents.model_io import ModelFileError, find_policies, find_policy, save_model
from goodhart.agents.policies import ModelPolicy, policy_from_name
from goodhart.agents.ppo import build_ppo
from goodhart.cli import app
from goodhart.envs import make_vec
from goodhart.experiments.config import ConfigError, read_yaml, resolve, validate
from goodhart.experiments.engine.jobs import Progress
from goodhart.experiments.train import StepsBar, steps_taken

COLOR = "goodhart/ColorMaze-v0"
TOMATO = "goodhart/TomatoWatering-v0"
NETWORK = {"channels": [4], "strides": [2], "features_dim": 8, "net_arch": []}


def goodhart(*args: str, columns: int | None = None) -> tuple[int, str]:
    env = {"COLUMNS": str(columns)} if columns else None
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def command_paths(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and subcommand of the CLI, the top level first."""
    paths = [prefix]
    for name, command in group.commands.items():
        paths += command_paths(command, (*prefix, name)) if hasattr(command, "commands") else [(*prefix, name)]
    return paths


COMMANDS = command_paths(typer.main.get_command(app))


# ------------------------------------------------------------------------ help
def test_every_command_is_checked():
    assert {("train",), ("evaluate",), ("record",), ("rlhf",), ("rlhf", "clone"), ("plot", "vfield"), ("redteam",)} <= set(COMMANDS)


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda path: " ".join(path) or "goodhart")
def test_help_reads_at_the_terminal_width(command, columns):
    """Nothing cut with "…", no value metavar on flags, nothing wider than the terminal."""
    code, out = goodhart(*command, "--help", columns=columns)
    assert code == 0 and out.startswith("Usage: "), out
    assert "…" not in out and "<bool>" not in out
    assert max(len(line) for line in out.splitlines()) <= columns, out
    flags = {"train": "--resume", "evaluate": "--deterministic", "record": "--deterministic", "bench": "--quick"}
    if command and command[-1] in flags:  # a flag takes no value: nothing follows its name but its help
        line = next(line for line in out.splitlines() if line.strip().startswith(flags[command[-1]] + " "))
        assert re.match(rf"\s*{flags[command[-1]]}\s{{2,}}[A-Z]", line), line


@pytest.mark.parametrize("command", [path for path in COMMANDS if not path or path == ("rlhf",) or path == ("plot",)],
                         ids=lambda path: " ".join(path) or "goodhart")
def test_command_lists_give_one_whole_line_per_command(command):
    """Each command's summary is a whole sentence on its own line, neither broken off
    mid-sentence nor cut with "..." (the command lists of `goodhart --help`, rlhf and plot)."""
    code, out = goodhart(*command, "--help", columns=80)
    listed = out.split("Commands:\n", 1)[1].splitlines()
    assert code == 0 and listed
    for line in listed:
        assert re.match(r"  \S+ +\S", line) and not line.endswith("..."), line


# --------------------------------------------------------------- YAML's booleans
def test_a_knob_of_string_choices_takes_the_yaml_spelling_of_its_choice(tmp_path):
    """TomatoWatering's reward is 'sensor' or 'true'; YAML reads `true` as a boolean."""
    for overrides in (["env_kwargs.reward=true"], ["env_kwargs.reward=True"], ["env_kwargs.reward='true'"]):
        cfg, _ = resolve(TOMATO, None, overrides, {})
        assert cfg.env_kwargs["reward"] == "true", overrides
    path = tmp_path / "tomato.yaml"
    path.write_text(f"env: {TOMATO}\nenv_kwargs:\n  reward: true\n")
    assert validate(read_yaml(path), str(path)).env_kwargs["reward"] == "true"
    with pytest.raises(ConfigError, match=r"--set env_kwargs.reward=false: env_kwargs: reward=False is not allowed; expected one of \['sensor', 'true'\]"):
        resolve(TOMATO, None, ["env_kwargs.reward=false"], {})


def test_knobs_that_take_booleans_still_take_booleans():
    cfg, _ = resolve("goodhart/LoopRace-v0", None, ["env_kwargs.forfeit=false"], {})
    assert cfg.env_kwargs["forfeit"] is False
    with pytest.raises(ConfigError, match="forfeit='true' is not allowed"):
        resolve("goodhart/LoopRace-v0", None, ["env_kwargs.forfeit='true'"], {})


def test_a_sweep_grid_of_string_choices_takes_yaml_spellings(tmp_path):
    from goodhart.experiments.sweep import expand, sweep_from_file

    path = tmp_path / "tomato.yaml"
    path.write_text(f"env: {TOMATO}\n")
    spec, _, origins = sweep_from_file(path, ["env_kwargs.reward=sensor,true"], None, [], None)
    runs = expand(spec, tmp_path / "out", origins=origins)
    assert sorted(run.config.env_kwargs["reward"] for run in runs) == ["sensor", "true"]
    assert sorted(run.condition for run in runs) == ["reward=sensor", "reward=true"]  # not reward=True


def test_train_takes_reward_true_from_the_command_line(tmp_path):
    """The error of the issue came before any training: a run whose budget is refused shows
    the env knob was accepted (the error is about the budget, not reward=True)."""
    code, out = goodhart("train", "--env", TOMATO, "--set", "env_kwargs.reward=true", "--timesteps", "0", "--out", str(tmp_path))
    assert code == 2 and "total_timesteps" in out and "reward" not in out, out


# ------------------------------------------------------------- YAML syntax errors
def test_a_yaml_syntax_error_names_the_file_line_and_column(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("env: goodhart/ColorMaze-v0\nppo:\n  n_steps: 64\n   batch_size: 128\n")
    with pytest.raises(ConfigError) as err:
        read_yaml(path)
    assert str(err.value) == f"{path}: not valid YAML: line 4, column 14: mapping values are not allowed here"
    path.write_text("env: goodhart/ColorMaze-v0\nnetwork:\n  channels: [16, 32\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: not valid YAML: line 4, column 1: .*flow sequence from line 3, column 13"):
        read_yaml(path)
    code, out = goodhart("train", "--config", str(path))
    assert code == 2 and "line 4, column 1" in out and out.count("\n") == 1, out


# ----------------------------------------------------------- where a policy is
def tiny_policy(stem: Path, seed: int = 0) -> Path:
    model = build_ppo(make_vec(COLOR, 1, seed=0), ppo={"n_steps": 8, "batch_size": 8}, network=NETWORK, seed=seed)
    save_model(model, stem, {"env": COLOR, "env_kwargs": {}, "network": NETWORK, "seed": seed})
    return stem


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """``runs/maze`` with seeds 0, 2 and 10; ``runs/one`` with seed 3; ``runs/file`` a policy file."""
    root = tmp_path_factory.mktemp("runs")
    for seed in (10, 0, 2):
        tiny_policy(root / "maze" / f"seed{seed}" / "model", seed)
    tiny_policy(root / "one" / "seed3" / "model", 3)
    tiny_policy(root / "file")
    return root


def test_a_policy_is_a_run_folder_a_seed_folder_or_a_file(runs):
    maze = runs / "maze"
    assert find_policies(maze) == [maze / f"seed{s}" / "model" for s in (0, 2, 10)]  # in seed order
    assert find_policies(maze / "seed2") == [maze / "seed2" / "model"]
    for typed in ("model", "model.json", "model.safetensors"):
        assert find_policies(maze / "seed2" / typed) == [maze / "seed2" / "model"]
    assert find_policies(runs / "file.json") == [runs / "file"]
    assert find_policy(runs / "one") == runs / "one" / "seed3" / "model"  # a run of one seed
    with pytest.raises(ModelFileError) as err:
        find_policy(maze)
    assert "3 training seeds (seed0, seed2, seed10)" in str(err.value) and f"e.g. {maze / 'seed0'}" in str(err.value)
    with pytest.raises(ModelFileError) as err:
        find_policies(runs / "nothing")
    nothing = runs / "nothing"
    assert str(err.value) == (
        f"{nothing}: policy not found; looked for a policy file ({nothing}.safetensors + {nothing}.json), "
        f"a seed folder ({nothing}/model.json) and a run folder ({nothing}/seed*/model.json)"
    )


def test_every_command_finds_a_policy_the_same_way(runs):
    from goodhart.experiments.evaluate import resolve_subject
    from goodhart.experiments.teaching.players import resolve as show

    sampled = policy_from_name(f"{runs / 'maze' / 'seed2'}@0.5", COLOR)  # rlhf sources and demonstrators
    assert isinstance(sampled.policy, ModelPolicy) and sampled.name == "maze/seed2@0.5"
    with pytest.raises(ModelFileError, match="a run folder of 3 training seeds"):
        policy_from_name(str(runs / "maze"), COLOR)
    assert sorted(resolve_subject(str(runs / "maze")).seeds) == [0, 2, 10]  # evaluate: every seed
    assert list(resolve_subject(str(runs / "maze" / "seed2")).seeds) == [2]
    players = show(None, [runs / "maze", runs / "one" / "seed3"]).players  # demo, record, plot heatmap/vfield
    assert [p.label for p in players] == ["maze/seed0", "maze/seed2", "maze/seed10", "one/seed3"]


def test_record_takes_a_seed_folder_and_names_what_it_looked_for(runs, tmp_path):
    code, out = goodhart("record", "maze", "--model", str(runs / "maze" / "seed0"), "--out", str(tmp_path / "m.gif"),
                         "--episodes", "1", "--max-steps", "2", "--distribution", "train")
    assert code == 0 and (tmp_path / "m.gif").is_file(), out
    code, out = goodhart("record", "maze", "--model", str(runs / "nothing"), "--out", str(tmp_path / "n.gif"))
    assert code == 2 and out.count("\n") == 1 and "looked for a policy file" in out and "a run folder" in out, out


def test_a_run_starts_from_a_seed_folder(runs, tmp_path):
    from goodhart.experiments.train import starting_policy

    cfg, _ = resolve(COLOR, None, [f"init={runs / 'one'}", "network.channels=[4]", "network.strides=[2]", "network.features_dim=8"], {})
    assert starting_policy(cfg).config["seed"] == 3


# -------------------------------------------------------------------- progress
def test_the_progress_bar_counts_the_steps_the_run_takes():
    """PPO collects whole rollouts (2 envs x 16 steps): 50 steps asked are 64 taken; the bar's
    total says 64 and its count ends there, also when a run goes on from where it stopped."""
    assert steps_taken(0, 20_000, 1024) == 20_480 and steps_taken(0, 2048, 1024) == 2048 and steps_taken(4096, 4000, 1024) == 4096
    model = build_ppo(make_vec(COLOR, 2, seed=0), ppo={"n_steps": 16, "batch_size": 32, "n_epochs": 1}, network=NETWORK, seed=0)
    bar = StepsBar()
    model.learn(50, callback=bar)
    assert model.num_timesteps == 64 and bar.pbar.total == 64 and bar.pbar.n == 64
    bar = StepsBar()
    model.learn(40, callback=bar, reset_num_timesteps=False)  # to 104: two more rollouts, to 128
    assert model.num_timesteps == 128 and bar.pbar.total == 64 and bar.pbar.n == 64


def test_a_job_never_reports_more_steps_than_its_total(tmp_path, capsys):
    progress = Progress(tmp_path / "p", total=20_000)
    progress(20_480)
    assert Progress.read(tmp_path / "p") == 20_000
    assert capsys.readouterr().out.strip() == "step 20000 of 20000 (100 %)"


# ------------------------------------------------- arguments before any progress
def test_rlhf_clone_refuses_a_bad_source_before_drawing_its_progress_bar(tmp_path):
    for bad in (["--source", "oracle-nope"], ["--source", str(tmp_path / "nothing")],
                ["--source", "oracle-racer", "--episodes", "1", "--val-fraction", "0.9"]):
        code, out = goodhart("rlhf", "clone", "--env", "goodhart/LoopRace-v0", *bad, "--out", str(tmp_path / "sft"))
        assert code == 2 and out.startswith("error: ") and out.count("\n") == 1 and "clone" not in out.split(":")[0], out
        assert not (tmp_path / "sft.json").exists()
