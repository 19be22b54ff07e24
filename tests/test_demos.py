"""Teaching demos: record, demo, play, the shipped policies and their registry, heatmaps and
vector fields, on the shipped envs and on a toy env the tools have never seen."""

from __future__ import annotations

import json
import sys
from typing import Any

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
from goodhart.envs import ENVS, core_class, make_vec
from goodhart.envs.core.arrays import to_numpy
from goodhart.envs.core.grid import MOVE_DELTAS, GridCore
from goodhart.envs.core.render import TEXT
from goodhart.experiments.teaching import display
from goodhart.experiments.teaching.demo import demo
from goodhart.experiments.teaching.frames import frames, renderer_for
from goodhart.experiments.teaching.heatmap import heatmap
from goodhart.experiments.teaching.panels import BAD, GOOD, episode_verdicts, make_panels, overlay_lines, plain, verdict
from goodhart.experiments.teaching.play import key_events, play
from goodhart.experiments.teaching.players import resolve
from goodhart.experiments.teaching.record import record
from goodhart.experiments.teaching.vfield import decision_square, level, shortest_path, vfield

torch.set_num_threads(1)

MAZE = "goodhart/ColorMaze-v0"
RACE = "goodhart/LoopRace-v0"
CORNER = "goodhart/CornerMaze-v0"
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
@pytest.mark.parametrize(
    "env_id, dist, oracle, expected",
    [
        (MAZE, "train", "goal", lambda o: ("reached: goal (on the cue)", "intended")),
        # the shortest path to the goal may pass the cue, and the one to the cue the goal
        (MAZE, "shifted", "goal", lambda o: ("reached: cue, then goal", "proxy") if o["reached_cue_first"] else ("reached: goal", "intended")),
        (MAZE, "shifted", "cue", lambda o: ("reached: goal", "intended") if o["reached_goal"] else ("reached: cue, not the goal", "proxy")),
        (CORNER, "train", "goal", lambda o: ("reached: goal (in the corner)", "intended")),
        (CORNER, "shifted", "corner", lambda o: ("reached: corner, not the goal", "proxy") if not o["reached_goal"]
         else ("reached: goal (in the corner)" if o["steps_to_corner"] == o["steps_to_goal"] else "reached: goal", "intended")),
        (RACE, "train", "racer", lambda o: ("finished the race (3 laps)", "intended")),
        (RACE, "train", "farmer", lambda o: (f"farming: {o['targets_hit']} targets, 0 laps", "proxy")),
    ],
)
def test_describe_reads_the_episode_outcome(env_id, dist, oracle, expected):
    core = make_vec(env_id, 1, distribution=dist).core
    outcomes = run_episodes(OraclePolicy(oracle), env_id, None, distribution=dist, episodes=16, level_seed=7)
    for outcome in outcomes:
        line, judged = expected(outcome)
        assert core.describe(outcome, done=True) == line, outcome
        assert verdict(core, outcome) == judged


def test_describe_while_running():
    outcomes = run_episodes(OraclePolicy("cue"), MAZE, None, distribution="shifted", episodes=16, level_seed=0)
    seed = next(k for k, o in enumerate(outcomes) if not o["reached_goal"])  # the goal not on the way to the cue
    venv = make_vec(MAZE, 1, seed=seed, distribution="shifted")
    venv.reset()
    core = venv.core
    assert core.describe(core.outcomes([0])[0], done=False) == "reached: nothing yet"
    lines = overlay_lines(core)
    assert plain(lines)[:4] == ["shifted", "step 0", "score 0", "true 0"]
    assert lines[-1] == ("reached: nothing yet", TEXT)
    while to_numpy(core.steps_to_proxy)[0] < 0:
        core.step(to_numpy(core.oracle_actions("cue")))
    assert core.describe(core.outcomes([0])[0], done=False) == "reached: cue"
    assert overlay_lines(core)[-1] == ("reached: cue", BAD)


def test_overlay_score_is_the_envs_proxy_whatever_the_reward():
    """A race trained on progress: its reward is lap progress, but the overlay's score is the
    game's (the env's PROXY_RETURN). The farmer races a lap until the lagoon is stocked, then
    farms: entering the lagoon forfeits the progress, so its return is 0."""
    moves, outcome = oracle_episode(RACE, "farmer", 0, reward="progress")
    venv = make_vec(RACE, 1, seed=0, reward="progress")
    venv.reset()
    for move in moves:
        venv.core.step(np.asarray([move]))
    assert outcome["return"] == 0 and outcome["score"] > 0
    lines = plain(overlay_lines(venv.core, 0, outcome, done=True))
    assert f"score {outcome['score']:g}" in lines and lines[-1].startswith("farming:")


# ------------------------------------------------------------------- the registry
def test_registry_names_shipped_policies_of_its_envs():
    for name, entry in pretrained.DEMOS.items():
        assert entry.env in ENVS and entry.policies and set(entry.policies) <= set(pretrained.POLICIES)
        assert len(entry.shows) == len(entry.policies) * len(entry.distributions)
        for policy in entry.policies:
            if policy in pretrained.available():
                assert load_policy(pretrained.path(policy)).env_id == entry.env, (name, policy)
    for name, policy in pretrained.POLICIES.items():
        assert (pretrained.FOLDER.parent / "configs" / policy.config).is_file(), name


def test_a_broken_registry_is_a_clear_error(tmp_path):
    broken = tmp_path / "demos.yaml"
    broken.write_text(pretrained.REGISTRY.read_text().replace("policies: [colormaze]", "policies: [nope]"))
    with pytest.raises(ValueError, match=r"demos.maze: policies \['nope'\] are not shipped"):
        pretrained._read(broken)


@shipped(*pretrained.NAMES)
@pytest.mark.parametrize("name", list(pretrained.DEMOS))
def test_each_demo_opens_on_an_episode_that_shows_the_failure(name):
    """The registry's seed: the first episode of `goodhart demo NAME` shows in every panel what
    the registry says (the agent reached something, and went for the proxy where it should).
    After retraining the shipped policies, scripts/pick_demo_seeds.py finds new seeds."""
    entry = pretrained.DEMOS[name]
    show = resolve(name)
    assert show.seed == entry.seed
    verdicts = episode_verdicts(make_panels(show), show.seed)
    assert verdicts == list(entry.shows), f"demo {name!r} at seed {entry.seed}: {verdicts}; run scripts/pick_demo_seeds.py"
    assert "proxy" in verdicts and "intended" in verdicts


@shipped("race_score", "colormaze")
def test_names_resolve_to_demos_policies_and_envs(tmp_path):
    assert [p.label for p in resolve("race").players] == ["trained on score", "trained on progress"]
    assert resolve(RACE).players[0].label == "trained on score"  # an env with a demo: the demo's policies
    one = resolve("race_score")
    assert [p.label for p in one.players] == ["trained on score"] and one.distributions == pretrained.DEMOS["race"].distributions
    with pytest.raises(ValueError, match="not a demo"):
        resolve("nowhere")
    with pytest.raises(ValueError, match="give NAME"):
        resolve(None)
    mine = resolve(None, [pretrained.path("colormaze")])
    assert mine.env_id == MAZE and mine.players[0].label == "colormaze"


# ----------------------------------------------------------------------- record
@shipped("colormaze")
def test_record_writes_the_episodes_with_their_outcomes(tmp_path):
    seed, episodes = 11, 2
    rec = record("maze", tmp_path / "maze.gif", episodes=episodes, seed=seed, fps=20, scale=0.5)
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
            assert last[-1] == core.describe(outcome, done=True)
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


def test_record_help_names_the_video_extra():
    code, out = goodhart("record", "--help")
    assert code == 0 and "'goodhart-gridworlds[video]'" in out


def test_record_refuses_a_missing_folder(tmp_path):
    code, out = goodhart("record", "maze", "--out", str(tmp_path / "missing" / "x.gif"))
    assert code == 2 and out.count("\n") == 1 and "does not exist" in out
    assert not (tmp_path / "missing").exists()


@shipped("colormaze")
def test_record_mp4_with_the_video_extra(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    rec = record("maze", tmp_path / "m.mp4", max_steps=3, scale=0.3, hold=0.5, fps=4)
    assert rec.frames == 4 and (tmp_path / "m.mp4").stat().st_size > 0


@shipped("colormaze")
def test_model_of_another_env_is_refused(tmp_path):
    code, out = goodhart("demo", "race", "--model", str(pretrained.path("colormaze")), "--fps", "1000")
    assert code == 2 and out.count("\n") == 1
    assert "trained on goodhart/ColorMaze-v0" in out and "'race' plays goodhart/LoopRace-v0" in out


def test_missing_model_is_named_as_typed(tmp_path):
    typed = str(tmp_path / "nothing" / "policy")
    code, out = goodhart("demo", "maze", "--model", typed, "--fps", "1000")
    assert code == 2 and f"--model {typed}:" in out and ".json" not in out.split(":", 2)[1]


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
    played = demo("maze", episodes=3, fps=1000, hold=0)
    assert played.outcomes == []  # quit on the first frame
    assert not pygame.display.get_init()


@pytest.fixture
def no_display(monkeypatch):
    """A Linux machine with no display and no SDL driver asked for."""
    for name in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(display.sys, "platform", "linux")


@shipped("colormaze")
def test_demo_without_a_display_says_what_to_do(no_display):
    code, out = goodhart("demo", "maze", "--fps", "1000")
    assert code == 2 and out.count("\n") == 1
    assert "no display" in out and "goodhart record maze" in out and "SDL_VIDEODRIVER=dummy" in out


def test_play_without_a_display_or_a_keyboard_says_so(no_display, monkeypatch):
    code, out = goodhart("play", MAZE)
    assert code == 2 and out.count("\n") == 1 and "no display" in out
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    code, out = goodhart("play", MAZE)
    assert code == 2 and out.count("\n") == 1 and "press a key" in out


def test_sdl_falling_back_to_offscreen_counts_as_no_display(monkeypatch):
    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(pygame.display, "init", lambda: None)
    monkeypatch.setattr(pygame.display, "get_driver", lambda: "offscreen")
    with pytest.raises(display.NoDisplay, match="offscreen"):
        display.require_display(demo="race")


# ------------------------------------------------------------------------- play
def test_play_follows_scripted_keys_to_the_goal():
    seed = 5
    moves, outcome = oracle_episode(MAZE, "goal", seed, distribution="shifted")
    escape = pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE)
    restart = pygame.event.Event(pygame.KEYDOWN, key=pygame.K_r)
    noise = pygame.event.Event(pygame.MOUSEMOTION, pos=(1, 1), rel=(0, 0), buttons=(0, 0, 0))
    script = [*key_events(moves[:2]), restart, noise, *key_events(moves), escape]
    outcomes = play(MAZE, distribution="shifted", seed=seed, fps=1000, events=script)
    assert outcomes == [outcome]
    assert outcome["reached_goal"] and outcome["steps"] == len(moves)


def test_play_reads_the_pygame_event_queue():
    seed = 2
    moves, outcome = oracle_episode(RACE, "racer", seed, max_steps=12)
    pygame.display.init()
    pygame.display.set_mode((64, 64))
    for event in [*key_events(moves), pygame.event.Event(pygame.QUIT)]:
        pygame.event.post(event)
    outcomes = play(RACE, seed=seed, fps=1000, env_kwargs={"max_steps": 12})
    assert outcomes == [outcome] and outcome["checkpoints"] > 0


# ------------------------------------------------------------ shipped policies
def test_shipped_policy_files_are_small_and_described():
    files = [f for f in pretrained.FOLDER.iterdir() if f.suffix in (".safetensors", ".json")]
    assert sum(f.stat().st_size for f in files) < 5_000_000  # seven policies (4.5 MB)
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


def test_eval_summary_json_is_valid():
    for name in pretrained.available():
        text = (pretrained.FOLDER / f"{name}.eval.json").read_text()
        assert "NaN" not in text
        json.loads(text)


# ------------------------------------------------------------------- pictures
@shipped("colormaze")
def test_heatmap_writes_a_png(tmp_path):
    result = heatmap("maze", tmp_path / "h.png", episodes=24, seed=0)
    assert (tmp_path / "h.png").read_bytes()[:8] == PNG
    train = result.panels[("colormaze", "train", "")]  # every maze its own layout: one panel
    assert train.visits.shape == make_vec(MAZE, 1).core.grid_shape
    assert np.all(train.visits[train.wall_rate >= 1] == 0)  # never inside a wall
    assert train.visits.sum() == pytest.approx(np.mean([1 + o["steps"] for o in train.outcomes]))
    assert [t.split("\n")[0] for t in result.titles] == ["train levels", "shifted levels"] and MAZE in result.title
    code, out = goodhart("plot", "heatmap", "maze", "--episodes", "8", "--level", "3", "--out", str(tmp_path / "one.png"))
    assert code == 0, out
    assert (tmp_path / "one.png").read_bytes()[:8] == PNG
    one = heatmap("maze", tmp_path / "one.png", episodes=4, level=3)
    assert one.legend == ["goal (intended)", "cue (proxy)", "wall"]  # a fixed level: goal and cue outlined


@shipped("race_score", "race_progress")
def test_race_heatmap_draws_each_track_layout_apart(tmp_path):
    result = heatmap("race", tmp_path / "race.png", episodes=12, distributions=["shifted"])
    layouts = {key[2] for key in result.panels}
    assert len(layouts) == 3 and all(layout.startswith("layout ") for layout in layouts)
    for visits in result.panels.values():
        assert set(np.unique(visits.wall_rate)) <= {0.0, 1.0}  # one layout per panel
    assert sum(len(v.copies) for (label, *_), v in result.panels.items() if label == "trained on score") == 12
    assert result.legend == ["targets (proxy)", "wall"]  # each layout's lagoon outlined


@shipped("colormaze")
def test_vfield_writes_a_png_and_marks_the_decision_square(tmp_path):
    drawn = vfield("maze", tmp_path / "v.png")
    (field,) = drawn.fields
    assert (tmp_path / "v.png").read_bytes()[:8] == PNG
    core = level(MAZE, {}, "shifted", drawn.seed)
    walls = to_numpy(core.walls)[0]
    assert len(field.cells) == int((~walls).sum())
    assert np.allclose(field.probs.sum(axis=1), 1)
    # the generic shortest paths are the env's oracles' paths
    to_goal = shortest_path(walls, drawn.start, core.target_cells(0)["intended"])
    to_cue = shortest_path(walls, drawn.start, core.target_cells(0)["proxy"])
    for path, oracle in ((to_goal, "goal"), (to_cue, "cue")):
        cells = [drawn.start]
        for move in oracle_episode(MAZE, oracle, drawn.seed, distribution="shifted")[0][: len(path) - 1]:
            cells.append(tuple(int(v) for v in np.add(cells[-1], MOVE_DELTAS[move])))
        assert cells == path
    split = to_goal.index(drawn.decision)
    assert to_cue[split] == drawn.decision and to_goal[split + 1] != to_cue[split + 1]
    assert drawn.decision != drawn.start
    assert "decision square" in drawn.legend and "cue (proxy)" in drawn.legend
    # the arrows: the mean move of the action probabilities; at the decision square the
    # shipped policy takes the way to the cue
    moves = [(-1, 0), (0, 1), (1, 0), (0, -1)]
    assert np.allclose(field.vectors, field.probs @ np.array(moves))
    probs = field.probs[[tuple(c) for c in field.cells.tolist()].index(drawn.decision)]

    def towards(cell):
        return probs[moves.index((cell[0] - drawn.decision[0], cell[1] - drawn.decision[1]))]

    assert towards(to_cue[split + 1]) > towards(to_goal[split + 1])
    code, out = goodhart("plot", "vfield", "maze", "--distribution", "train", "--seed", "0", "--out", str(tmp_path / "t.png"))
    assert code == 0 and "decision square: none" in out  # the cue on the goal: no split


@shipped("race_score", "race_progress")
def test_race_vfield_shows_only_what_it_draws(tmp_path):
    drawn = vfield("race", tmp_path / "race.png")
    assert [f.label for f in drawn.fields] == ["trained on score", "trained on progress"]
    assert drawn.decision is None and "decision square" not in drawn.legend  # no intended place to split towards
    assert "targets (proxy)" in drawn.legend and "next checkpoint" in drawn.legend


def test_decision_square_is_none_when_the_paths_do_not_split():
    core = level(MAZE, {}, "train", 0)  # the cue on the goal
    walls, start = to_numpy(core.walls)[0], tuple(int(v) for v in to_numpy(core.pos)[0])
    assert decision_square(walls, start, core.target_cells(0)) is None
    race = level(RACE, {}, "train", 0)
    assert decision_square(to_numpy(race.walls)[0], tuple(int(v) for v in to_numpy(race.pos)[0]), race.target_cells(0)) is None


# ------------------------------------------------------- a new env, never seen before
class Corridor(GridCore):
    """A toy env the tools have never seen: a corridor with an exit at one end (what we want)
    and a coin at the other (what the reward pays for)."""

    CHANNELS = ("wall", "exit", "coin", "agent")
    COLOURS = {"wall": (60, 60, 70), "exit": (90, 160, 90), "coin": (230, 200, 40), "agent": (40, 90, 220)}
    SYMBOLS = {"wall": "#", "exit": "E", "coin": "c", "agent": "A"}
    STYLES = {"wall": "tile", "exit": "tile", "coin": "disc", "agent": "agent"}
    DISTRIBUTIONS = {"train": "the exit on the right", "shifted": "the exit on the left"}
    OUTCOMES = ("reached_exit", "reached_coin", "reached_any", "exit_first")
    CAPABILITY, PREFERENCE = "reached_any", "exit_first"
    DEFAULT_MAX_STEPS = 12
    ORACLES = ("exit", "coin")
    INTENDED_NAME, PROXY_NAME = "exit", "coin"
    TARGET_COLOURS = {"intended": (0, 120, 0), "proxy": (200, 0, 200)}
    HEADLINE = ("exit_first", "reached_coin")

    def __init__(self, num_envs: int = 1, **common: Any) -> None:
        super().__init__(num_envs, **common)
        self.steps_to_exit = self._zeros((num_envs,), np.int64)
        self.steps_to_coin = self._zeros((num_envs,), np.int64)

    @property
    def grid_shape(self) -> tuple[int, int]:
        return 3, 9

    def _generate(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        walls = np.ones(self.grid_shape, dtype=bool)
        walls[1, 1:8] = False
        left, right = np.zeros_like(walls), np.zeros_like(walls)
        left[1, 1], right[1, 7] = True, True
        exit_map, coin = (right, left) if self.distribution == "train" else (left, right)
        to_right, to_left = np.full(walls.shape, 1), np.full(walls.shape, 3)
        return {
            "walls": walls, "pos": np.array([1, 4]), "exit_map": exit_map, "coin_map": coin,
            "policy_exit": to_right if exit_map is right else to_left, "policy_coin": to_left if exit_map is right else to_right,
        }

    def _begin_episode(self, idx: Any) -> None:
        self.steps_to_exit[idx] = -1
        self.steps_to_coin[idx] = -1

    def _transition(self, actions: Any) -> tuple[Any, Any, Any]:
        xp = self.xp
        self._move(actions)
        at_exit = self.exit_map[self.rows, self.pos[:, 0], self.pos[:, 1]]
        at_coin = self.coin_map[self.rows, self.pos[:, 0], self.pos[:, 1]]
        self.steps_to_exit = xp.where(at_exit & (self.steps_to_exit < 0), self.steps, self.steps_to_exit)
        self.steps_to_coin = xp.where(at_coin & (self.steps_to_coin < 0), self.steps, self.steps_to_coin)
        return xp.astype(at_coin, xp.float64), xp.astype(at_exit, xp.float64), at_exit | at_coin

    def planes(self, reveal: bool = False) -> Any:
        xp = self.xp
        return xp.stack([xp.astype(m, xp.uint8) for m in (self.walls, self.exit_map, self.coin_map)] + [self._agent_plane()], axis=1)

    def _outcome_arrays(self) -> dict[str, Any]:
        exit_, coin = self.steps_to_exit >= 0, self.steps_to_coin >= 0
        return {"reached_exit": exit_, "reached_coin": coin, "reached_any": exit_ | coin, "exit_first": exit_ & ~coin}

    def target_cells(self, index: int) -> dict[str, np.ndarray]:
        return {"intended": to_numpy(self.exit_map)[index].copy(), "proxy": to_numpy(self.coin_map)[index].copy()}


@pytest.fixture
def corridor(monkeypatch):
    """The toy env, registered the way a new env module is (one line in ``ENVS``), for one test."""
    env_id = "goodhart/Corridor-v0"
    monkeypatch.setitem(ENVS, env_id, Corridor)
    return env_id


def test_a_new_env_gets_demos_and_plots_from_its_hooks(corridor, tmp_path):
    show = resolve(corridor)
    assert [p.label for p in show.players] == ["oracle-exit", "oracle-coin"]  # no shipped policy: its oracles
    panels = make_panels(show)
    assert [p.title for p in panels] == ["oracle-exit, train", "oracle-exit, shifted", "oracle-coin, train", "oracle-coin, shifted"]
    last = list(frames(panels, episodes=1, seed=0, renderer=renderer_for(0.3)))[-1]
    assert [lines[-1] for lines in last.lines] == ["reached: exit"] * 2 + ["reached: coin"] * 2  # GridCore's describe
    assert [verdict(p.core, p.outcome) for p in panels] == ["intended", "intended", "proxy", "proxy"]
    assert overlay_lines(panels[2].core, 0, panels[2].outcome, True)[-1][1] == BAD
    assert overlay_lines(panels[0].core, 0, panels[0].outcome, True)[-1][1] == GOOD
    assert last.lines[2][:4] == ["train", "step 3", "score 1", "true 0"]  # the coin pays, the exit is what counts

    rec = record(corridor, tmp_path / "c.gif", distributions=["shifted"], scale=0.3)
    assert rec.frames > 1 and rec.titles == ["oracle-exit", "oracle-coin"]
    hm = heatmap(corridor, tmp_path / "h.png", episodes=6)
    assert hm.title.startswith(corridor) and hm.legend == ["exit (intended)", "coin (proxy)", "wall"]
    assert hm.titles[0] == "oracle-exit: train levels\nexit first 1.00, coin 0.00"  # its HEADLINE
    vf = vfield(corridor, tmp_path / "v.png", seed=0)
    assert vf.decision is not None and "decision square" in vf.legend and "exit (intended)" in vf.legend
    for fld in vf.fields:  # an oracle's field: all its probability on its one move
        assert np.allclose(fld.probs.max(axis=1), 1)
    code, out = goodhart("record", corridor, "--out", str(tmp_path / "cli.gif"), "--scale", "0.3")
    assert code == 0 and "oracle-coin, shifted: reached: coin" in out
