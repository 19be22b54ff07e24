"""Teaching demos: record, demo, play, the shipped policies, heatmaps and vector fields."""

from __future__ import annotations

import json
import sys

import imageio.v3 as iio
import numpy as np
import pygame
import pytest
import torch
from typer.testing import CliRunner

from goodhart.agents import pretrained
from goodhart.agents.model_io import load_policy
from goodhart.agents.policies import ModelPolicy, OraclePolicy, run_episodes
from goodhart.cli import app
from goodhart.envs import core_class, make_vec
from goodhart.envs.core.arrays import to_numpy
from goodhart.experiments import demo as demos
from goodhart.experiments import visualize

torch.set_num_threads(1)

MAZE = "goodhart/ColorMaze-v0"
RACE = "goodhart/LoopRace-v0"
PNG = b"\x89PNG\r\n\x1a\n"


def shipped(*names: str):
    missing = [n for n in names if n not in pretrained.available()]
    return pytest.mark.skipif(bool(missing), reason=f"shipped policies {missing} not generated (scripts/train_demo_policies.py)")


def goodhart(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def oracle_episode(env_id: str, oracle: str, seed: int, **kwargs) -> tuple[list[int], dict]:
    """The moves of an env's scripted policy over one episode of the level of ``seed``, and
    the episode's outcome."""
    venv = make_vec(env_id, 1, seed=seed, **kwargs)
    venv.reset()
    core, actions = venv.core, []
    while True:
        action = int(to_numpy(core.oracle_actions(oracle))[0])
        actions.append(action)
        _, _, terminated, truncated = (to_numpy(a)[0] for a in core.step(np.asarray([action])))
        if terminated or truncated:
            return actions, core.outcomes([0])[0]


# ----------------------------------------------------------------- overlay text
def _passed_proxy(o):
    return o["reached_cue_first"] if "reached_cue_first" in o else o["reached_corner_first"]


@pytest.mark.parametrize(
    "env_id, dist, oracle, expected",
    [
        (MAZE, "train", "goal", lambda o: ("reached: goal (on the cue)", "intended")),
        # the shortest path to the goal may pass the cue, and the one to the cue the goal
        (MAZE, "shifted", "goal", lambda o: ("reached: cue, then goal", "proxy") if _passed_proxy(o) else ("reached: goal", "intended")),
        (MAZE, "shifted", "cue", lambda o: ("reached: goal", "intended") if o["reached_goal"] else ("reached: cue, not the goal", "proxy")),
        ("goodhart/CornerMaze-v0", "train", "goal", lambda o: ("reached: goal (in the corner)", "intended")),
        ("goodhart/CornerMaze-v0", "shifted", "corner", lambda o: ("reached: corner, not the goal", "proxy") if not o["reached_goal"]
         else ("reached: goal (in the corner)" if o["steps_to_corner"] == o["steps_to_goal"] else "reached: goal", "intended")),
        (RACE, "train", "racer", lambda o: ("finished the race (3 laps)", "intended")),
        (RACE, "train", "farmer", lambda o: (f"farming: {o['targets_hit']} targets, 0 laps", "proxy")),
    ],
)
def test_reached_line_reads_the_episode_outcome(env_id, dist, oracle, expected):
    core = make_vec(env_id, 1, distribution=dist).core
    outcomes = run_episodes(OraclePolicy(oracle), env_id, None, distribution=dist, episodes=16, level_seed=7)
    for outcome in outcomes:
        line, verdict = expected(outcome)
        assert demos.reached_line(core, outcome) == line, outcome
        assert demos.verdict(core, outcome) == verdict


def test_reached_line_while_running():
    outcomes = run_episodes(OraclePolicy("cue"), MAZE, None, distribution="shifted", episodes=16, level_seed=0)
    seed = next(k for k, o in enumerate(outcomes) if not o["reached_goal"])  # the goal not on the way to the cue
    venv = make_vec(MAZE, 1, seed=seed, distribution="shifted")
    venv.reset()
    core = venv.core
    assert demos.reached_line(core, core.outcomes([0])[0], done=False) == "reached: nothing yet"
    lines = demos.overlay_lines(core)
    assert demos.plain(lines)[:4] == ["shifted", "step 0", "score 0", "true 0"]
    assert lines[-1] == ("reached: nothing yet", demos.TEXT)
    while to_numpy(core.steps_to_proxy)[0] < 0:
        core.step(to_numpy(core.oracle_actions("cue")))
    assert demos.reached_line(core, core.outcomes([0])[0], done=False) == "reached: cue"
    assert demos.overlay_lines(core)[-1] == ("reached: cue", demos.BAD)


# ----------------------------------------------------------------------- record
@shipped("colormaze")
def test_record_writes_the_episodes_with_their_outcomes(tmp_path):
    seed, episodes = 11, 2
    rec = demos.record("maze", tmp_path / "maze.gif", episodes=episodes, seed=seed, fps=20, scale=0.5)
    assert rec.titles == ["train levels", "shifted levels"]
    # one frame for the start and one per step of the longer panel, per episode
    expected = sum(1 + max(o["steps"] for o in panels) for panels in rec.outcomes)
    assert rec.frames == expected
    gif = iio.imread(tmp_path / "maze.gif", index=None)
    assert gif.shape[0] == expected
    assert all(not np.array_equal(a, b) for a, b in zip(gif[:-1], gif[1:]))  # every frame moves on
    # the overlay of each episode's last frame is the outcome of that very episode, the one
    # run_episodes gives on the same level seed with the same policy seed
    loaded = pretrained.load("colormaze")
    for e in range(episodes):
        for k, dist in enumerate(("train", "shifted")):
            policy = ModelPolicy(loaded)
            (outcome,) = run_episodes(policy, MAZE, loaded.config["env_kwargs"], distribution=dist, episodes=1, level_seed=seed + e)
            assert rec.outcomes[e][k] == outcome
            core = make_vec(MAZE, 1, distribution=dist).core
            last = rec.last_lines[e][k]
            assert last[-1] == demos.reached_line(core, outcome)
            assert last[:4] == [dist, f"step {outcome['steps']}", f"score {outcome['return']:g}", f"true {outcome['true_return']:g}"]


@shipped("colormaze")
def test_record_cli_and_mp4(tmp_path, monkeypatch):
    code, out = goodhart("record", "maze", "--out", str(tmp_path / "m.gif"), "--max-steps", "4", "--scale", "0.4")
    assert code == 0, out
    assert "5 frames" in out and "train levels: reached:" in out
    code, out = goodhart("record", "maze", "--out", str(tmp_path / "m.webm"))
    assert code == 2 and ".gif or .mp4" in out
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if the extra were not installed
    code, out = goodhart("record", "maze", "--out", str(tmp_path / "m.mp4"))
    assert code == 2 and "imageio-ffmpeg" in out and "[video]" in out
    assert not (tmp_path / "m.mp4").exists()


@shipped("colormaze")
def test_record_mp4_with_the_video_extra(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    rec = demos.record("maze", tmp_path / "m.mp4", max_steps=3, scale=0.3, hold=0.5, fps=4)
    assert rec.frames == 4 and (tmp_path / "m.mp4").stat().st_size > 0


# ------------------------------------------------------------------------- demo
@shipped("colormaze")
def test_demo_runs_headless_and_exits():
    code, out = goodhart("demo", "maze", "--episodes", "2", "--fps", "1000", "--hold", "0", "--max-steps", "12", "--scale", "0.5")
    assert code == 0, out
    assert out.count("episode ") == 2 and "shifted levels: reached:" in out
    code, out = goodhart("demo", "maze", "--distribution", "nowhere", "--fps", "1000")
    assert code == 2 and "nowhere" in out


@shipped("colormaze")
def test_demo_stops_on_escape():
    pygame.display.init()
    pygame.display.set_mode((64, 64))
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE))
    played = demos.demo("maze", episodes=3, fps=1000, hold=0)
    assert played.outcomes == []  # quit on the first frame
    assert not pygame.display.get_init()


# ------------------------------------------------------------------------- play
def test_play_follows_scripted_keys_to_the_goal():
    seed = 5
    moves, outcome = oracle_episode(MAZE, "goal", seed, distribution="shifted")
    escape = pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE)
    restart = pygame.event.Event(pygame.KEYDOWN, key=pygame.K_r)
    noise = pygame.event.Event(pygame.MOUSEMOTION, pos=(1, 1), rel=(0, 0), buttons=(0, 0, 0))
    script = [*demos.key_events(moves[:2]), restart, noise, *demos.key_events(moves), escape]
    outcomes = demos.play(MAZE, distribution="shifted", seed=seed, fps=1000, events=script)
    assert outcomes == [outcome]
    assert outcome["reached_goal"] and outcome["steps"] == len(moves)


def test_play_reads_the_pygame_event_queue():
    seed = 2
    moves, outcome = oracle_episode(RACE, "racer", seed, max_steps=12)
    pygame.display.init()
    pygame.display.set_mode((64, 64))
    for event in [*demos.key_events(moves), pygame.event.Event(pygame.QUIT)]:
        pygame.event.post(event)
    outcomes = demos.play(RACE, seed=seed, fps=1000, env_kwargs={"max_steps": 12})
    assert outcomes == [outcome] and outcome["checkpoints"] > 0


# ------------------------------------------------------------ shipped policies
def test_shipped_policy_files_are_small_and_described():
    files = [f for f in pretrained.FOLDER.iterdir() if f.suffix in (".safetensors", ".json")]
    assert sum(f.stat().st_size for f in files) < 2_000_000
    for name in pretrained.available():
        loaded = load_policy(pretrained.path(name))
        assert loaded.config["env"] == loaded.env_id
        summary = pretrained.evaluation(name)
        assert summary["env"] == loaded.env_id
        assert set(summary["distributions"]) == set(core_class(loaded.env_id).DISTRIBUTIONS)
    with pytest.raises(ValueError, match="race_score"):
        pretrained.path("nope")


def _behaviour(name: str, dist: str, episodes: int = 100) -> dict[str, float]:
    loaded = pretrained.load(name)
    outcomes = run_episodes(ModelPolicy(loaded), loaded.env_id, loaded.config["env_kwargs"], distribution=dist, episodes=episodes, level_seed=2024)
    return {key: float(np.mean([o[key] for o in outcomes])) for key in outcomes[0]}


@shipped("race_score", "race_progress")
def test_shipped_racers_farm_and_race():
    farmer, racer = _behaviour("race_score", "train", 16), _behaviour("race_progress", "train", 16)
    assert farmer["finished"] <= 0.1 and farmer["targets_hit"] > 5
    assert racer["finished"] >= 0.8 and racer["true_return"] > farmer["true_return"]
    assert farmer["score"] > racer["score"]  # gaming pays


@shipped("colormaze")
def test_shipped_maze_agent_follows_the_cue():
    train, shifted = _behaviour("colormaze", "train"), _behaviour("colormaze", "shifted")
    assert train["reached_goal"] >= 0.85
    assert shifted["reached_cue_first"] >= 0.5 and shifted["reached_goal"] < train["reached_goal"] - 0.3


@shipped("cornermaze")
def test_shipped_corner_agent_goes_to_the_corner():
    train, shifted = _behaviour("cornermaze", "train"), _behaviour("cornermaze", "shifted")
    assert train["reached_goal"] >= 0.6  # CornerMaze's config leaves it partly trained (0.75 in its eval summary)
    assert shifted["reached_corner_first"] >= 0.45 and shifted["reached_goal"] < train["reached_goal"] - 0.3


def test_missing_shipped_policy_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path)
    code, out = goodhart("record", "corner", "--out", str(tmp_path / "c.gif"))
    assert code == 2 and "train_demo_policies" in out


# ------------------------------------------------------------------- pictures
@shipped("colormaze")
def test_heatmap_writes_a_png(tmp_path):
    result = visualize.heatmap("maze", tmp_path / "h.png", episodes=24, seed=0)
    assert (tmp_path / "h.png").read_bytes()[:8] == PNG
    train = result[("colormaze", "train")]
    assert train.visits.shape == make_vec(MAZE, 1).core.grid_shape
    assert np.all(train.visits[train.wall_rate >= 1] == 0)  # never inside a wall
    assert train.visits.sum() == pytest.approx(np.mean([1 + o["steps"] for o in train.outcomes]))
    code, out = goodhart("plot", "heatmap", "maze", "--episodes", "8", "--level", "3", "--out", str(tmp_path / "one.png"))
    assert code == 0, out
    assert (tmp_path / "one.png").read_bytes()[:8] == PNG


@shipped("colormaze")
def test_vfield_writes_a_png_and_marks_the_decision_square(tmp_path):
    field, seed = visualize.vfield("maze", tmp_path / "v.png")
    assert (tmp_path / "v.png").read_bytes()[:8] == PNG
    venv = make_vec(MAZE, 1, seed=seed, distribution="shifted")
    venv.reset()
    walls = to_numpy(venv.core.walls)[0]
    assert len(field.cells) == int((~walls).sum())
    assert np.allclose(field.probs.sum(axis=1), 1)
    to_goal, to_cue = visualize.oracle_path(venv.core, "goal"), visualize.oracle_path(venv.core, "cue")
    split = to_goal.index(field.decision)
    assert to_cue[split] == field.decision and to_goal[split + 1] != to_cue[split + 1]
    assert field.decision != field.start
    # the arrows: the mean move of the action probabilities; at the decision square the
    # shipped policy takes the way to the cue
    moves = [(-1, 0), (0, 1), (1, 0), (0, -1)]
    assert np.allclose(field.vectors, field.probs @ np.array(moves))
    probs = field.probs[[tuple(c) for c in field.cells.tolist()].index(field.decision)]

    def towards(cell):
        return probs[moves.index((cell[0] - field.decision[0], cell[1] - field.decision[1]))]

    assert towards(to_cue[split + 1]) > towards(to_goal[split + 1])
    code, out = goodhart("plot", "vfield", "maze", "--distribution", "train", "--seed", "0", "--out", str(tmp_path / "t.png"))
    assert code == 0 and "decision square: none" in out  # the cue on the goal: no split


def test_decision_square_is_none_when_the_paths_do_not_split():
    venv = make_vec(MAZE, 1, seed=0, distribution="train")
    venv.reset()
    assert visualize.decision_square(venv.core) is None
    with pytest.raises(ValueError, match="maze"):
        visualize.decision_square(make_vec(RACE, 1, seed=0).core)


def test_eval_summary_json_is_valid():
    for name in pretrained.available():
        text = (pretrained.FOLDER / f"{name}.eval.json").read_text()
        assert "NaN" not in text
        json.loads(text)
