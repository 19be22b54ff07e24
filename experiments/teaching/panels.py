"""Teaching demos: watch trained policies game their reward or misgeneralize, record it, or play.

Three demos, each played by policies shipped with the package (:mod:`goodhart.agents.pretrained`):

* ``race``: LoopRace, the score-trained policy (it farms the lagoon) beside the
  progress-trained one (it races), on the same track;
* ``maze``: ColorMaze, one policy on a training level and on the shifted level of the same
  seed (the same maze and goal; only the cue moved);
* ``corner``: CornerMaze, the same with the goal out of the top-right corner.

Each panel of a frame is drawn by :class:`~goodhart.envs.core.render.Renderer` with a title,
the env's overlay (distribution, step, proxy score, true objective so far) and a line saying
what the agent has reached (:func:`reached_line`). :func:`demo` shows the frames in a window,
:func:`record` writes them to a GIF or MP4, and :func:`play` lets a person drive with the
keyboard.

Panels of one episode share its level seed: episode ``e`` of a run with ``seed=s`` plays the
level of ``gym.make(env_id, distribution=...).reset(seed=s + e)``, and a sampling policy is
seeded ``s + e`` too, so the episode is the first one of
``run_episodes(policy, ..., episodes=1, level_seed=s + e)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from goodhart.agents import pretrained
from goodhart.agents.model_io import LoadedModel, ModelFileError, load_policy
from goodhart.agents.policies import ModelPolicy
from goodhart.envs import core_class, make_vec
from goodhart.envs.core.arrays import to_numpy
from goodhart.envs.core.goal_maze import GoalMaze
from goodhart.envs.core.grid import GridCore
from goodhart.envs.core.gym_env import overlay
from goodhart.envs.core.render import TEXT, Renderer
from goodhart.envs.core.vec_env import GridVecEnv
from goodhart.envs.loop_race import N_CHECKPOINTS, LoopRace


@dataclass(frozen=True)
class DemoSpec:
    """A demo: the shipped policies that play it and the distributions they play on."""

    models: tuple[str, ...]
    distributions: tuple[str, ...]
    about: str


DEMOS: dict[str, DemoSpec] = {
    "race": DemoSpec(("race_score", "race_progress"), ("train",), "LoopRace: trained on the score (farms) vs. on progress (races)"),
    "maze": DemoSpec(("colormaze",), ("train", "shifted"), "ColorMaze: the cue on the goal (train) vs. away from it (shifted)"),
    "corner": DemoSpec(("cornermaze",), ("train", "shifted"), "CornerMaze: the goal in the corner (train) vs. anywhere (shifted)"),
}

GOOD = (20, 135, 55)  # the reached line when the agent did what we want
BAD = (200, 40, 30)  # ... and when it went for the proxy
SEPARATOR = (150, 150, 150)
PANEL_GAP = 6
BASE_CELL, BASE_FONT = 32, 20
PANEL_WIDTH = 215  # at 20-pixel text: room for the longest reached line
GIF_COLOURS = 64  # one palette shared by a GIF's frames


class MissingExtra(RuntimeError):
    """An optional dependency is missing; the message names the extra that installs it."""


# ------------------------------------------------------------------ what was reached
def verdict(core: GridCore, outcome: dict[str, Any]) -> str | None:
    """``"intended"`` when the agent did what we want (reached the goal first; finished the
    race), ``"proxy"`` when it went for the proxy (the cue or the corner first; hit lagoon
    targets without finishing), ``None`` when it has done neither (yet): the env's own
    ``CAPABILITY`` and ``PREFERENCE`` flags, so any env gets it."""
    if not outcome[core.CAPABILITY]:
        return None
    return "intended" if outcome[core.PREFERENCE] else "proxy"


def reached_line(core: GridCore, outcome: dict[str, Any], done: bool = True) -> str:
    """The overlay line saying what the agent reached in an episode, from its outcome dict
    (``info["outcome"]`` at the end, or ``core.outcomes([i])[0]`` during it).

    Mazes (``proxy`` is ``cue`` or ``corner``): ``reached: goal``, ``reached: goal (on the
    cue)`` when both at once, ``reached: cue, then goal``, ``reached: cue, not the goal``
    (``reached: cue`` while running), ``reached: nothing`` (``... yet``). LoopRace:
    ``finished the race``, ``farming: N targets, L laps``, ``racing: K/T checkpoints``.
    """
    if isinstance(core, GoalMaze):
        proxy = core.ORACLES[1]
        goal_reached, proxy_first = bool(outcome[core.OUTCOMES[0]]), bool(outcome[core.OUTCOMES[1]])
        to_goal, to_proxy = outcome[core.OUTCOMES[2]], outcome[core.OUTCOMES[3]]
        if proxy_first:
            if goal_reached:
                return f"reached: {proxy}, then goal"
            return f"reached: {proxy}, not the goal" if done else f"reached: {proxy}"
        if goal_reached:
            where = {"cue": "on the cue", "corner": "in the corner"}.get(proxy, f"at the {proxy}")
            return f"reached: goal ({where})" if to_proxy == to_goal else "reached: goal"
        return "reached: nothing" if done else "reached: nothing yet"
    if isinstance(core, LoopRace):
        laps = int(outcome["laps"])
        if outcome["finished"]:
            return f"finished the race ({laps} laps)"
        if outcome["targets_hit"] > 0:
            return f"farming: {int(outcome['targets_hit'])} targets, {laps} laps"
        return f"racing: {int(outcome['checkpoints'])}/{N_CHECKPOINTS * core.laps} checkpoints"
    return ""


def overlay_lines(core: GridCore, index: int = 0, outcome: dict[str, Any] | None = None, done: bool = False) -> list:
    """The text beside a panel: the env's overlay (distribution, step, proxy score, true
    objective so far; for LoopRace the game's score even when the policy was trained on
    progress) and the reached line, coloured by :func:`verdict`. ``outcome`` defaults to the
    episode so far."""
    if outcome is None:
        outcome = core.outcomes([index])[0]
    lines = overlay(core, index)
    if "score" in outcome:  # LoopRace: the game's score, also when the policy trained on progress
        lines = [f"score {float(outcome['score']):g}" if line.startswith("score ") else line for line in lines]
    colour = {"intended": GOOD, "proxy": BAD}.get(verdict(core, outcome), TEXT)
    return [*lines, (reached_line(core, outcome, done), colour)]


def plain(lines: Sequence[Any]) -> list[str]:
    """The text of overlay lines (dropping their colours)."""
    return [line if isinstance(line, str) else line[0] for line in lines]


# ------------------------------------------------------------------------- models
def model_label(loaded: LoadedModel, stem: str) -> str:
    """A short name for a policy: what a LoopRace policy was trained on, else its file name."""
    reward = loaded.config.get("env_kwargs", {}).get("reward")
    if loaded.env_id == "goodhart/LoopRace-v0":
        return f"trained on {reward or 'score'}"
    return Path(stem).name


def load_models(name: str, models: Sequence[str | os.PathLike[str]] | None = None) -> list[tuple[str, LoadedModel]]:
    """``(label, model)`` of the policies of demo ``name``: ``models`` (file stems) if given,
    else the shipped ones. Raises ``ModelFileError`` naming a missing shipped file."""
    spec = demo_spec(name)
    loaded = []
    if models:
        for stem in models:
            model = load_policy(stem)
            loaded.append((model_label(model, os.fspath(stem)), model))
        return loaded
    for shipped in spec.models:
        try:
            model = pretrained.load(shipped)
        except ModelFileError as err:
            raise ModelFileError(
                f"{err} (the shipped policy {shipped!r} is not there: regenerate it with "
                f"scripts/train_demo_policies.py, or pass --model)"
            ) from None
        loaded.append((model_label(model, shipped), model))
    return loaded


def demo_spec(name: str) -> DemoSpec:
    if name not in DEMOS:
        raise ValueError(f"unknown demo {name!r}; valid ones: {list(DEMOS)}")
    return DEMOS[name]


# ------------------------------------------------------------------------- panels
@dataclass
class Panel:
    """One policy playing one distribution, a batch of one driven step by step (no
    auto-reset, so the last frame of an episode shows how it ended)."""

    title: str
    model: LoadedModel
    distribution: str
    deterministic: bool = False
    max_steps: int | None = None
    venv: GridVecEnv = field(init=False)
    policy: ModelPolicy = field(init=False)
    obs: np.ndarray = field(init=False)
    done: bool = field(init=False, default=False)
    outcome: dict[str, Any] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        kwargs = {k: v for k, v in self.model.config.get("env_kwargs", {}).items() if k != "distribution"}
        if self.max_steps is not None:
            kwargs["max_steps"] = self.max_steps
        self.env_kwargs = kwargs
        self.venv = make_vec(self.model.env_id, 1, distribution=self.distribution, **kwargs)
        self.policy = ModelPolicy(self.model, deterministic=self.deterministic, name=self.title)

    @property
    def core(self) -> GridCore:
        return self.venv.core

    def start(self, seed: int) -> None:
        """A new episode on the level of seed ``seed`` (the policy reseeded with it too)."""
        self.venv.seed(seed)
        self.obs = self.venv.reset()
        self.policy.reset(seed)
        self.done, self.outcome = False, None

    def step(self) -> None:
        if self.done:
            return
        actions = self.policy.act(self.obs, self.venv)
        _, _, terminated, truncated = (to_numpy(a) for a in self.core.step(actions))
        self.obs = np.array(to_numpy(self.core.observe()), copy=True)
        if terminated[0] or truncated[0]:
            self.done = True
            self.outcome = self.core.outcomes([0])[0]

    def lines(self) -> list:
        return overlay_lines(self.core, 0, self.outcome, self.done)


def make_panels(
    name: str,
    models: Sequence[str | os.PathLike[str]] | None = None,
    distributions: Sequence[str] | None = None,
    *,
    deterministic: bool = False,
    max_steps: int | None = None,
) -> list[Panel]:
    """The panels of demo ``name``: every model on every distribution (defaults: the demo's)."""
    spec = demo_spec(name)
    loaded = load_models(name, models)
    dists = list(distributions or spec.distributions)
    for _, model in loaded:
        valid = core_class(model.env_id).DISTRIBUTIONS
        for dist in dists:
            if dist not in valid:
                raise ValueError(f"distribution {dist!r} is not one of {model.env_id}: valid ones: {list(valid)}")
    panels = []
    for label, model in loaded:
        for dist in dists:
            if len(loaded) > 1 and len(dists) > 1:
                title = f"{label}, {dist}"
            elif len(loaded) > 1:
                title = label
            else:
                title = f"{dist} levels"
            panels.append(Panel(title, model, dist, deterministic, max_steps))
    return panels


# ------------------------------------------------------------------------- frames
@dataclass
class Frame:
    """One frame of a demo: the picture, where it is, and each panel's overlay text."""

    image: np.ndarray
    episode: int
    step: int
    last: bool  # the last frame of its episode: every panel's episode has ended
    lines: list[list[str]]
    outcomes: list[dict[str, Any] | None]  # each panel's outcome (None while running)


def renderer_for(scale: float) -> Renderer:
    """A renderer with cells and text scaled by ``scale`` (1: 32-pixel cells)."""
    if not scale > 0:
        raise ValueError(f"scale={scale} must be positive")
    font = max(12, round(BASE_FONT * scale))
    return Renderer(cell=max(4, round(BASE_CELL * scale)), font_size=font, panel_width=round(PANEL_WIDTH * font / BASE_FONT))


def compose(images: Sequence[np.ndarray]) -> np.ndarray:
    """Panels side by side, padded to the same height, with a grey gap between them."""
    height = max(image.shape[0] for image in images)
    parts = []
    for k, image in enumerate(images):
        if k:
            parts.append(np.full((height, PANEL_GAP, 3), SEPARATOR, dtype=np.uint8))
        pad = height - image.shape[0]
        parts.append(np.concatenate([image, np.full((pad, image.shape[1], 3), 255, np.uint8)]) if pad else image)
    return np.concatenate(parts, axis=1)


def frames(panels: Sequence[Panel], *, episodes: int, seed: int, renderer: Renderer) -> Iterator[Frame]:
    """Frames of ``episodes`` episodes played in lockstep by all panels: episode ``e`` on the
    level of seed ``seed + e``; a panel whose episode ended stays on its last state until
    all have ended. An episode gives ``1 + max(steps)`` frames (the start, then one per step)."""
    if episodes < 1:
        raise ValueError(f"episodes={episodes} must be at least 1")
    for episode in range(episodes):
        for panel in panels:
            panel.start(seed + episode)
        step = 0
        while True:
            last = all(panel.done for panel in panels)
            lines = [panel.lines() for panel in panels]
            image = compose([renderer.frame(p.core, 0, text, p.title) for p, text in zip(panels, lines)])
            yield Frame(image, episode, step, last, [plain(text) for text in lines], [p.outcome for p in panels])
            if last:
                break
            for panel in panels:
                panel.step()
            step += 1


# ---------------------------------------------------------------------- the window
def _quit_requested(pg, events: Iterable[Any]) -> bool:
    return any(e.type == pg.QUIT or (e.type == pg.KEYDOWN and e.key in (pg.K_ESCAPE, pg.K_q)) for e in events)


@dataclass
class Played:
    """What a demo played: the panels' titles and, per finished episode, each panel's outcome
    and the overlay text of its last frame."""

    titles: list[str]
    outcomes: list[list[dict[str, Any]]] = field(default_factory=list)
    last_lines: list[list[list[str]]] = field(default_factory=list)

    def add(self, frame: Frame) -> None:
        self.outcomes.append(list(frame.outcomes))  # type: ignore[arg-type]
        self.last_lines.append(frame.lines)

    def summary(self, seed: int = 0) -> list[str]:
        """One line per episode: each panel's reached line."""
        return [
            f"episode {k + 1} (seed {seed + k}): " + " | ".join(f"{t}: {text[-1]}" for t, text in zip(self.titles, lines))
            for k, lines in enumerate(self.last_lines)
        ]


@dataclass
class Recording(Played):
    """What :func:`record` wrote: :class:`Played` plus the file and its frame count."""

    path: Path = Path()
    frames: int = 0


def demo(
    name: str,
    *,
    models: Sequence[str | os.PathLike[str]] | None = None,
    distributions: Sequence[str] | None = None,
    episodes: int = 3,
    fps: int = 8,
    scale: float = 1.0,
    seed: int = 0,
    deterministic: bool = False,
    max_steps: int | None = None,
    hold: float = 1.5,
) -> Played:
    """Play demo ``name`` in a resizable window at ``fps`` frames per second, holding the end
    of each episode for ``hold`` seconds; Esc, Q or closing the window stops it. Returns
    what was played (episodes cut short by quitting are left out). Runs headless with
    ``SDL_VIDEODRIVER=dummy``."""
    if fps < 1:
        raise ValueError(f"fps={fps} must be at least 1")
    panels = make_panels(name, models, distributions, deterministic=deterministic, max_steps=max_steps)
    renderer = renderer_for(scale)
    pg = renderer.pygame
    played = Played([p.title for p in panels])
    try:
        for frame in frames(panels, episodes=episodes, seed=seed, renderer=renderer):
            for _ in range(max(1, round(hold * fps)) if frame.last else 1):
                renderer.show(frame.image, fps)
                if _quit_requested(pg, pg.event.get()):
                    return played
            if frame.last:
                played.add(frame)
    finally:
        renderer.close()
    return played


# ------------------------------------------------------------------------ recording
def _mp4_writer() -> Callable[..., Any]:
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        raise MissingExtra(
            "writing .mp4 needs imageio-ffmpeg, in the optional extra 'video': "
            "pip install 'goodhart-gridworlds[video]' (or write a .gif)"
        ) from None
    import imageio.v2 as iio2

    return iio2.get_writer


def record(
    name: str,
    out: str | os.PathLike[str],
    *,
    models: Sequence[str | os.PathLike[str]] | None = None,
    distributions: Sequence[str] | None = None,
    episodes: int = 1,
    fps: int = 8,
    scale: float = 1.0,
    seed: int = 0,
    deterministic: bool = False,
    max_steps: int | None = None,
    hold: float = 1.5,
) -> Recording:
    """Write the frames of demo ``name`` to ``out`` (``.gif``, or ``.mp4`` with the ``video``
    extra), headless. A GIF holds one frame per step in one 64-colour palette, the last of
    each episode shown for ``hold`` seconds; an MP4 repeats it instead. Returns a
    :class:`Recording`."""
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"--out {path}: the file must end in .gif or .mp4")
    if fps < 1:
        raise ValueError(f"fps={fps} must be at least 1")
    get_writer = _mp4_writer() if suffix == ".mp4" else None
    panels = make_panels(name, models, distributions, deterministic=deterministic, max_steps=max_steps)
    renderer = renderer_for(scale)
    images, durations = [], []
    rec = Recording([p.title for p in panels], path=path)
    for frame in frames(panels, episodes=episodes, seed=seed, renderer=renderer):
        images.append(frame.image)
        durations.append(1000 / fps + (hold * 1000 if frame.last else 0))
        if frame.last:
            rec.add(frame)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        import imageio.v3 as iio

        iio.imwrite(path, shared_palette(images), extension=".gif", duration=[round(d) for d in durations], loop=0)
    else:
        repeats = max(1, round(hold * fps))
        with get_writer(path, fps=fps, macro_block_size=1, codec="libx264", quality=7) as writer:
            for image, duration in zip(images, durations):
                image = _even(image)
                for _ in range(repeats + 1 if duration > 1000 / fps + 1e-9 else 1):
                    writer.append_data(image)
    rec.frames = len(images)
    return rec


def shared_palette(images: Sequence[np.ndarray], colours: int = GIF_COLOURS) -> np.ndarray:
    """The frames mapped to one palette of ``colours`` colours drawn from a sample of them
    (no dithering): GIF frames then share their colours and compress to about half the size
    (text antialiasing makes hundreds of colours otherwise)."""
    from PIL import Image

    stack = np.stack(images)
    sample = [*stack[:: max(1, len(stack) // 12)], stack[-1]]
    palette = Image.fromarray(np.concatenate(sample, axis=0)).quantize(
        colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    rgb = np.array(palette.getpalette()[: 3 * colours], dtype=np.uint8).reshape(-1, 3)
    return np.stack([rgb[np.asarray(Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE))] for f in stack])


def _even(image: np.ndarray) -> np.ndarray:
    """Pad to even height and width (H.264's 4:2:0 colour needs them)."""
    h, w = image.shape[:2]
    return np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), constant_values=255)


# ---------------------------------------------------------------------------- play
PLAY_HELP = "arrows move, R restart, N next level, Esc quit"


def play(
    env_id: str,
    *,
    distribution: str = "train",
    seed: int = 0,
    scale: float = 1.0,
    fps: int = 30,
    env_kwargs: dict[str, Any] | None = None,
    events: Iterable[Any] | None = None,
) -> list[dict[str, Any]]:
    """A person plays ``env_id`` with the keyboard: arrow keys move, R restarts the level,
    N goes on to the next level (seed + 1), Esc or closing the window quits. The overlay is
    the demos' one. Returns the outcomes of the episodes that ended.

    ``events``: where input comes from. ``None`` reads pygame's event queue (so events posted
    with ``pygame.event.post`` work too); an iterable of pygame events (or of lists of them)
    is consumed one item per frame instead, and the game quits when it runs out, so a test can
    script a game."""
    venv = make_vec(env_id, 1, distribution=distribution, **(env_kwargs or {}))
    core = venv.core
    renderer = renderer_for(scale)
    pg = renderer.pygame
    keys = {pg.K_UP: 0, pg.K_RIGHT: 1, pg.K_DOWN: 2, pg.K_LEFT: 3}
    script = None if events is None else iter(events)
    outcomes: list[dict[str, Any]] = []
    level = seed

    def start(level_seed: int) -> None:
        venv.seed(level_seed)
        venv.reset()

    start(level)
    outcome: dict[str, Any] | None = None
    try:
        while True:
            lines = [*overlay_lines(core, 0, outcome, outcome is not None), f"level seed {level}", PLAY_HELP]
            renderer.show(renderer.frame(core, 0, lines, "you"), fps)
            if script is None:
                batch = pg.event.get()
            else:
                try:
                    item = next(script)
                except StopIteration:
                    return outcomes
                batch = item if isinstance(item, (list, tuple)) else [item]
            for event in batch:
                if event.type == pg.QUIT:
                    return outcomes
                if event.type != pg.KEYDOWN:
                    continue
                if event.key in (pg.K_ESCAPE, pg.K_q):
                    return outcomes
                if event.key == pg.K_r:
                    start(level)
                    outcome = None
                elif event.key == pg.K_n:
                    level += 1
                    start(level)
                    outcome = None
                elif event.key in keys and outcome is None:
                    _, _, terminated, truncated = (to_numpy(a) for a in core.step(np.asarray([keys[event.key]])))
                    if terminated[0] or truncated[0]:
                        outcome = core.outcomes([0])[0]
                        outcomes.append(outcome)
    finally:
        renderer.close()


def key_events(actions: Iterable[int], pg: Any = None) -> list[Any]:
    """pygame KEYDOWN events of the arrow keys for ``actions`` (0 up, 1 right, 2 down,
    3 left), to script :func:`play`."""
    if pg is None:
        from goodhart.envs.core.render import _pygame

        pg = _pygame()
    arrows = (pg.K_UP, pg.K_RIGHT, pg.K_DOWN, pg.K_LEFT)
    return [pg.event.Event(pg.KEYDOWN, key=arrows[int(a)]) for a in actions]


__all__ = [
    "DEMOS",
    "Frame",
    "MissingExtra",
    "Panel",
    "Played",
    "Recording",
    "demo",
    "frames",
    "key_events",
    "make_panels",
    "overlay_lines",
    "play",
    "reached_line",
    "record",
    "verdict",
]
