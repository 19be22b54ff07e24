"""The batched core every environment is written on: N copies of one gridworld held in arrays.

An environment subclasses :class:`GridCore` once. Its dynamics (``_transition``) and its
observation planes (``planes``) are written against the array API over the whole batch, with
no per-copy Python loop, so the same code runs on numpy arrays (CPU, stable-baselines3) and on
torch tensors (any device). Level generation (``_generate``) draws one level at a time with
numpy from that copy's own generator, which is what makes a batch of N copies seeded
``s, s+1, ...`` replay exactly the episodes of N single environments seeded the same way.

The Gymnasium env (:mod:`goodhart.envs.core.gym_env`) is a view of a batch of one; the
stable-baselines3 VecEnv (:mod:`goodhart.envs.core.vec_env`) and the Gymnasium VectorEnv
(:mod:`goodhart.envs.core.gym_vector_env`) are views of a batch of N, sharing
:mod:`goodhart.envs.core.autoreset`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import numpy as np

from goodhart.envs.core.arrays import namespace, paste, to_numpy
from goodhart.envs.core.checks import ArgumentError, check_choice, check_int

OBS_MODES = ("symbolic", "rgb")
VIEWS = ("full", "agent")

# Moves shared by every env: (row, column) deltas of up, right, down, left.
MOVES = ("up", "right", "down", "left")
MOVE_DELTAS = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.int64)

Levels = dict[str, np.ndarray]  # level array name -> (k, ...) arrays of k levels


def _host(values: Any) -> np.ndarray:
    """A numpy copy of ``values`` as bool, int64 or float64."""
    host = to_numpy(values)
    dtype = {"b": np.bool_, "i": np.int64, "u": np.int64}.get(host.dtype.kind, np.float64)
    return np.array(host, dtype=dtype, copy=True)


class Decision(NamedTuple):
    """A level's decision square (row, column) and the move (an index into ``ACTIONS``) that
    leaves it towards each target: ``moves["intended"]``, ``moves["proxy"]``."""

    cell: tuple[int, int]
    moves: dict[str, int]


def outcome_rows(arrays: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """Outcome arrays of k copies (name -> (k,)) as k dicts of plain Python values."""
    count = len(next(iter(arrays.values()))) if arrays else 0
    return [{name: values[k].item() for name, values in arrays.items()} for k in range(count)]


def declares(core: type[GridCore] | GridCore, hook: str) -> bool:
    """Whether an env implements the curriculum hook ``hook`` (``optimal_return``,
    ``distinguishing``, ``edit_level``) rather than inheriting the default that refuses."""
    cls = core if isinstance(core, type) else type(core)
    return getattr(cls, hook) is not getattr(GridCore, hook)


class GridCore:
    """N copies of a gridworld. Subclasses define the class attributes and the hooks below.

    Class attributes:
        CHANNELS: names of the symbolic observation channels, in drawing order (later on top).
        COLOURS: RGB of each channel, for pixels and rendering.
        SYMBOLS: one character per channel, for the ``ansi`` text grid.
        STYLES: how each channel is drawn: ``"tile"`` (floor, fills the cell), ``"disc"``
            (an object on the floor) or ``"agent"``; objects are drawn over floor.
        DISTRIBUTIONS: level distribution name -> one-line description.
        OUTCOMES: names of the env's own outcome metrics (``return``, ``true_return`` and
            ``steps`` are added for every env).
        CAPABILITY: the outcome flag "the agent reached something it could be after" (the goal
            or its proxy; the finish or the lagoon): what the evaluator calls capability.
        PREFERENCE: the outcome flag "the intended thing, not the proxy", read among the
            capable episodes: what the evaluator calls preference.
        DEFAULT_MAX_STEPS: the default of ``max_steps``, the episode limit, which the core
            enforces itself (the envs register no Gymnasium ``max_episode_steps``).
        ORACLES: names of scripted reference policies. Each is a level array
            ``policy_<name>`` (H, W) of the action to take on each cell, made by ``_generate``;
            :meth:`oracle_actions` looks it up at every agent, so oracles run batched.
        SALIENT_EVENT: in words, the visible, proxy-like event that simulated raters with a
            salience bias over-weight (``None``: the env declares none); counted per step by
            :meth:`salient_events`.
        OVERSIGHT_REGIONS: name -> description of the parts of the grid a rater with limited
            oversight may be restricted to; :meth:`in_view` says whether each agent is in one.
            Every env has the four halves of the grid; an env may add its own.

    Presentation hooks: what the demos, plots and reports say about an episode. They learn
    everything env-specific from these names, never from the env's class or id, so a new env
    declares ``INTENDED_NAME``, ``PROXY_NAME`` and ``HEADLINE`` (no defaults) and overrides the
    others where their defaults do not fit; the contract tests check them for every
    registered env.
        INTENDED_NAME: what we want, in words: ``"goal"``, ``"finish"``.
        PROXY_NAME: what the proxy pays for or the agent may learn instead: ``"cue"``,
            ``"targets"``.
        TARGET_COLOURS: RGB of the outlines of :meth:`target_cells`' masks in plots, by key
            (``"intended"``, ``"proxy"``); default green and orange.
        HEADLINE: outcome names that summarise an episode, most important first (plot
            titles, heatmap summaries, report openings).
        PROXY_RETURN: the outcome holding the episode's return of the env's *own* proxy
            reward, whatever reward the policy was trained on (default ``"return"``).
        UNITS: outcome name -> the unit of its per-episode value, for axis labels and report
            sentences: ``{"true_return": "laps", "score": "points"}`` (default: none).
        :meth:`target_cells`: boolean (H, W) masks of the intended target and of the proxy
            where the env has such places (default: none).
        :meth:`describe`: one line saying what the agent did in an episode (default: built
            from ``CAPABILITY``, ``PREFERENCE`` and the two names).

    Steering hooks: what activation steering (:mod:`goodhart.agents.steering`) asks of a level.
        CONTRASTS: name -> description of a counterfactual level: the same level with one
            thing removed or moved (ColorMaze's ``"no_cue"``: without the cue). A steering
            vector is a layer's activations on levels minus those on their counterfactuals
            (default: none; an env that declares some implements ``_contrast``).
        :meth:`contrast_observation`: the observations of the counterfactual levels.
        :meth:`decision`: a level's decision square and the moves from it towards the
            intended target and the proxy (default: from :meth:`target_cells`).

    Curriculum hooks: what a level curriculum (:mod:`goodhart.agents.curriculum`) and the red
    team (``goodhart redteam``) ask of a level, as arrays of :meth:`level_arrays`. An env that
    cannot answer one leaves its default, which says so; :func:`declares` tells which it has.
        :meth:`optimal_return`: the exact optimal discounted true return of each level (oracle
            regret, learnability).
        :meth:`distinguishing`: whether the proxy and the intended target come apart there.
        EDITS: name -> description of a small change of a level (move the goal, a wall...),
            applied by :meth:`edit_level` (ACCEL's edits).

    State common to all envs: ``pos`` (N, 2) row/column, ``heading`` (N,) last move,
    ``steps`` (N,), and the episode's proxy and true returns.
    """

    CHANNELS: ClassVar[tuple[str, ...]]
    COLOURS: ClassVar[Mapping[str, tuple[int, int, int]]]
    SYMBOLS: ClassVar[Mapping[str, str]]
    STYLES: ClassVar[Mapping[str, str]]
    DISTRIBUTIONS: ClassVar[Mapping[str, str]]
    OUTCOMES: ClassVar[tuple[str, ...]]
    CAPABILITY: ClassVar[str]
    PREFERENCE: ClassVar[str]
    DEFAULT_MAX_STEPS: ClassVar[int]
    ORACLES: ClassVar[tuple[str, ...]] = ()
    ACTIONS: ClassVar[tuple[str, ...]] = MOVES
    SALIENT_EVENT: ClassVar[str | None] = None
    OVERSIGHT_REGIONS: ClassVar[Mapping[str, str]] = {
        "top": "the top half of the grid",
        "bottom": "the bottom half of the grid",
        "left": "the left half of the grid",
        "right": "the right half of the grid",
    }
    BACKGROUND: ClassVar[tuple[int, int, int]] = (250, 250, 245)
    INTENDED_NAME: ClassVar[str]
    PROXY_NAME: ClassVar[str]
    TARGET_COLOURS: ClassVar[Mapping[str, tuple[int, int, int]]] = {"intended": (40, 170, 70), "proxy": (255, 170, 30)}
    HEADLINE: ClassVar[tuple[str, ...]]
    PROXY_RETURN: ClassVar[str] = "return"
    UNITS: ClassVar[Mapping[str, str]] = {}
    CONTRASTS: ClassVar[Mapping[str, str]] = {}
    EDITS: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        num_envs: int,
        *,
        distribution: str = "train",
        obs_mode: str = "symbolic",
        view: str = "full",
        max_steps: int | None = None,
        rgb_tile: int = 4,
        backend: str = "numpy",
        device: Any = None,
    ) -> None:
        self.num_envs = check_int("num_envs", num_envs, 1)
        if distribution not in self.DISTRIBUTIONS:
            raise ArgumentError(
                "distribution",
                f"distribution={distribution!r} is not a level distribution of "
                f"{type(self).__name__}; valid ones: {list(self.DISTRIBUTIONS)}"
            )
        self.distribution = distribution
        self.obs_mode = check_choice("obs_mode", obs_mode, OBS_MODES)
        self.view = check_choice("view", view, VIEWS)
        self.max_steps = check_int(
            "max_steps", self.DEFAULT_MAX_STEPS if max_steps is None else max_steps, 1
        )
        self.rgb_tile = check_int("rgb_tile", rgb_tile, 1, 32)
        self.xp = namespace(backend)
        self.backend = backend
        self.device = device
        n = self.num_envs
        self.rows = self._asarray(np.arange(n))
        self._move_deltas = self._asarray(MOVE_DELTAS)
        self._colours = self._asarray(
            np.array([self.COLOURS[c] for c in self.CHANNELS], dtype=np.uint8)
        )
        self._background = self._asarray(np.array(self.BACKGROUND, dtype=np.uint8))
        self.pos = self._zeros((n, 2), np.int64)
        self.start_pos = self._zeros((n, 2), np.int64)  # where each copy's episode started: its level's ``pos``
        self.heading = self._zeros((n,), np.int64)
        self.steps = self._zeros((n,), np.int64)
        self.episode_return = self._zeros((n,), np.float64)
        self.episode_true_return = self._zeros((n,), np.float64)
        self._loaded = False
        self._buffers: dict[tuple[int, ...], Any] = {}
        self._level_keys: tuple[str, ...] | None = None

    # ------------------------------------------------------------------ hooks
    @property
    def grid_shape(self) -> tuple[int, int]:
        """(H, W) of the full grid."""
        raise NotImplementedError

    def _generate(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """One level of ``self.distribution`` as numpy arrays; keys name the level arrays
        (attributes of the core, one row per copy). Must include ``walls`` and ``pos``."""
        raise NotImplementedError

    def _begin_episode(self, idx: Any) -> None:
        """Reset the env's own episode state of copies ``idx`` after their level is loaded."""
        raise NotImplementedError

    def _transition(self, actions: Any) -> tuple[Any, Any, Any]:
        """Advance every copy by one step: ``(reward, true_reward, terminated)``."""
        raise NotImplementedError

    def planes(self, reveal: bool = False) -> Any:
        """Symbolic full-grid planes ``(N, C, H, W)`` uint8. ``reveal`` shows what the agent
        is not allowed to see (for rendering to people)."""
        raise NotImplementedError

    def _outcome_arrays(self) -> dict[str, Any]:
        """The env's own outcome metrics of every copy, as (N,) arrays."""
        raise NotImplementedError

    # ------------------------------------------------------ presentation hooks
    def target_cells(self, index: int) -> dict[str, np.ndarray]:
        """Boolean (H, W) numpy masks of copy ``index``: ``"intended"`` and/or ``"proxy"``,
        the cells of the intended target and of the proxy where the env has such places (none
        by default). Heatmaps outline them; a vector field's decision square is where the
        shortest paths from the agent to the two masks split."""
        return {}

    def describe(self, outcome: Mapping[str, Any], done: bool) -> str:
        """One line for a demo panel saying what the agent did in the episode so far, from its
        outcome dict (``done``: the episode has ended). This default reads ``CAPABILITY`` and
        ``PREFERENCE``: ``reached: <intended>``, ``reached: <proxy>``, or nothing (yet)."""
        if not outcome[self.CAPABILITY]:
            return "reached: nothing" if done else "reached: nothing yet"
        return f"reached: {self.INTENDED_NAME if outcome[self.PREFERENCE] else self.PROXY_NAME}"

    def _salient_events(self) -> Any:
        """(N,) float: how much of ``SALIENT_EVENT`` the step just taken showed, read from the
        state after the step. Envs that declare ``SALIENT_EVENT`` implement it."""
        raise NotImplementedError

    # ------------------------------------------------------ rater hooks
    def salient_events(self) -> Any:
        """(N,) float64: the salient, proxy-like event (``SALIENT_EVENT``) in the step just
        taken by every copy: what a simulated rater with a salience bias over-weights, the
        analogue of human raters rewarding length or confidence. Call it after :meth:`step`
        and before resetting the copies that ended."""
        if self.SALIENT_EVENT is None:
            raise ValueError(f"{type(self).__name__} declares no salient event (SALIENT_EVENT), so a rater cannot be biased towards one")
        return self.xp.astype(self._salient_events(), self.xp.float64)

    def in_view(self, region: str) -> Any:
        """(N,) bool: each copy's agent is in ``region`` (one of ``OVERSIGHT_REGIONS``), the
        part of the grid a rater with limited oversight sees. The default regions are the
        halves of the grid; subclasses that add regions extend this method."""
        check_choice("oversight region", region, list(self.OVERSIGHT_REGIONS))
        h, w = self.grid_shape
        row, col = self.pos[:, 0], self.pos[:, 1]
        halves = {"top": 2 * row < h, "bottom": 2 * row >= h, "left": 2 * col < w, "right": 2 * col >= w}
        if region not in halves:
            raise NotImplementedError(f"{type(self).__name__} lists the oversight region {region!r} but does not define it")
        return halves[region]

    # ------------------------------------------------------------ curriculum hooks
    def optimal_return(self, levels: Levels, gamma: float) -> np.ndarray:
        """(k,) float64: the highest discounted true return any policy can get on each of
        ``levels`` (the sum over steps t = 0, 1, ... of ``gamma**t`` times the true reward,
        within ``max_steps``): what oracle regret subtracts the policy's return from. Envs
        that can compute it exactly (the mazes, from shortest paths) override this."""
        raise NotImplementedError(
            f"{type(self).__name__} does not compute a level's optimal return, so oracle regret and "
            "learnability cannot score its levels; use a value-based score (pvl or maxmc)"
        )

    def distinguishing(self, levels: Levels) -> np.ndarray:
        """(k,) bool: on each of ``levels`` the proxy and the intended target come apart (a
        policy that follows the proxy does not get the true return: ColorMaze's cue away from
        the goal). What a curriculum's logs count, to show how often it plays such levels."""
        raise NotImplementedError(f"{type(self).__name__} does not say which of its levels are distinguishing")

    def edit_level(self, level: Mapping[str, np.ndarray], name: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """A new level: ``level`` (one level's arrays, as one row of :meth:`level_arrays`)
        changed by the edit ``name`` (one of ``EDITS``), drawn from ``rng``; what ACCEL
        (Parker-Holder et al. 2022) applies to the levels of highest regret."""
        raise NotImplementedError(f"{type(self).__name__} declares no level edits (EDITS), so ACCEL cannot edit its levels")

    def edit_levels(self, levels: Levels, names: Sequence[str], num_edits: int, rng: np.random.Generator, children: int = 1) -> Levels:
        """``children`` new levels per level of ``levels`` (parent after parent), each the parent
        after ``num_edits`` edits drawn uniformly from ``names`` (some of ``EDITS``): what a
        curriculum and the red team make of the levels of highest regret."""
        rows = []
        for i in range(len(next(iter(levels.values())))):
            parent = {key: values[i] for key, values in levels.items()}
            for _ in range(children):
                child = parent
                for name in rng.choice(list(names), size=num_edits):
                    child = self.edit_level(child, str(name), rng)
                rows.append(child)
        return {key: np.stack([np.asarray(row[key]) for row in rows]) for key in levels}

    # ------------------------------------------------------------ steering hooks
    def decision(self, index: int) -> Decision | None:
        """The decision square of copy ``index``'s level seen from its agent's cell, where
        Turner et al. read a maze policy's choice: the last cell shared by the shortest paths
        to the intended target and to the proxy (:meth:`target_cells`), with the move that
        leaves it towards each; ``None`` where the env declares no such pair of places, or
        the paths do not split (one target lies on the way to the other)."""
        from goodhart.envs.core.maze import decision_moves  # maze.py imports this module

        start = tuple(int(v) for v in to_numpy(self.pos)[index])
        found = decision_moves(to_numpy(self.walls)[index].astype(bool), start, self.target_cells(index))  # type: ignore[arg-type]
        return None if found is None else Decision(*found)

    def contrast_observation(self, name: str) -> Any:
        """The observations of every copy, as :meth:`observe` gives them, on its level changed
        as contrast ``name`` (one of ``CONTRASTS``) says, the agent where it is. The state is
        left as it was, so the copies play on unchanged: a steering vector is computed from
        the two observations of one state."""
        if not self.CONTRASTS:
            raise ArgumentError("contrast", f"{type(self).__name__} declares no contrasts (CONTRASTS), so no steering vector can be computed on it")
        check_choice("contrast", name, list(self.CONTRASTS))
        changed = self._contrast(name)
        saved = {key: getattr(self, key) for key in changed}
        try:
            for key, values in changed.items():
                setattr(self, key, self._asarray(values))
            return self.observe()
        finally:
            for key, values in saved.items():
                setattr(self, key, values)

    def _contrast(self, name: str) -> dict[str, np.ndarray]:
        """The level arrays that contrast ``name`` replaces (attribute -> (N, ...) numpy array
        for every copy). Envs that declare ``CONTRASTS`` implement it."""
        raise NotImplementedError

    # ------------------------------------------------------------- batch API
    def reset(self, indices: Sequence[int], rngs: Sequence[np.random.Generator]) -> None:
        """Start a new episode in copies ``indices``, each on a level drawn from its ``rng``."""
        self.load_levels(indices, self.generate_levels(rngs))

    def generate_levels(self, rngs: Sequence[np.random.Generator]) -> Levels:
        """One level of ``self.distribution`` per generator, stacked: level array name ->
        (k, ...) numpy array. A level is a reproducible object: the same generator state gives
        the same arrays, which :meth:`load_levels` plays back bit for bit."""
        levels = [self._generate(rng) for rng in rngs]
        return {key: np.stack([level[key] for level in levels]) for key in levels[0]}

    def load_levels(self, indices: Sequence[int], levels: Levels) -> None:
        """Start a new episode in copies ``indices`` on the given levels (as
        :meth:`generate_levels` or :meth:`level_arrays` give them, one row per copy)."""
        idx = self._asarray(np.asarray(indices, dtype=np.int64))
        for key, stacked in levels.items():
            if not self._loaded:
                if hasattr(type(self), key):
                    raise TypeError(f"level array {key!r} of {type(self).__name__} would hide its attribute of that name")
                if len(indices) != self.num_envs:
                    raise RuntimeError("the first reset must start every copy")
                setattr(self, key, self._zeros((self.num_envs, *stacked.shape[1:]), stacked.dtype))
            getattr(self, key)[idx] = self._asarray(np.asarray(stacked))
        self.start_pos[idx] = self.pos[idx]
        self._loaded = True
        self.heading[idx] = 0
        self.steps[idx] = 0
        self.episode_return[idx] = 0.0
        self.episode_true_return[idx] = 0.0
        self._begin_episode(idx)

    @property
    def level_keys(self) -> tuple[str, ...]:
        """The names of the level arrays (what ``_generate`` returns), in its order."""
        if self._level_keys is None:
            self._level_keys = tuple(self._generate(np.random.default_rng(0)))
        return self._level_keys

    def level_arrays(self, indices: Sequence[int] | None = None) -> Levels:
        """The levels copies ``indices`` (default: all) are playing, as numpy copies: what
        :meth:`load_levels` takes to play them again. The agent's ``pos`` is where its episode
        started; an env whose other level arrays change during an episode (targets taken)
        gives them as they are now, so a curriculum reads them at an episode's start."""
        rows = np.arange(self.num_envs) if indices is None else np.asarray(indices, dtype=np.int64)
        return {key: np.array(to_numpy(getattr(self, "start_pos" if key == "pos" else key))[rows], copy=True) for key in self.level_keys}

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any]:
        """Advance every copy: ``(reward, true_reward, terminated, truncated)`` arrays of (N,).
        Copies whose episode ended must be reset by the caller before the next step."""
        actions = self.xp.astype(self._asarray(actions), self.xp.int64, copy=True)  # kept as heading
        self.steps += 1
        reward, true_reward, terminated = self._transition(actions)
        truncated = (self.steps >= self.max_steps) & ~terminated
        self.episode_return += reward
        self.episode_true_return += true_reward
        return reward, true_reward, terminated, truncated

    def observe(self, indices: Any = None) -> Any:
        """Observations of every copy, or of copies ``indices``: ``(N, C, h, w)`` uint8 planes
        (symbolic) or ``(N, h*t, w*t, 3)`` uint8 pixels (rgb), of the full grid or the
        agent-centred view."""
        planes, pos = self.planes(reveal=False), self.pos
        if indices is not None:
            idx = self._asarray(np.asarray(indices, dtype=np.int64))
            planes, pos = planes[idx], pos[idx]
        if self.view == "agent":
            planes = self._centre_on_agent(planes, pos)
        if self.obs_mode == "symbolic":
            return planes
        return self.paint(planes, self.rgb_tile)

    @property
    def observation_shape(self) -> tuple[int, ...]:
        h, w = self.grid_shape
        if self.view == "agent":
            h, w = 2 * h - 1, 2 * w - 1
        if self.obs_mode == "symbolic":
            return (len(self.CHANNELS), h, w)
        return (h * self.rgb_tile, w * self.rgb_tile, 3)

    def oracle_actions(self, name: str) -> Any:
        """(N,) actions of the scripted policy ``name`` (one of ``ORACLES``) in every copy."""
        check_choice("oracle", name, self.ORACLES)
        return getattr(self, f"policy_{name}")[self.rows, self.pos[:, 0], self.pos[:, 1]]

    def outcome_arrays(self) -> dict[str, np.ndarray]:
        """Every copy's outcome metrics (``return``, ``true_return``, the env's own, ``steps``)
        as (N,) numpy copies of dtype bool, int64 or float64: the dtypes Gymnasium gives an
        info value of Python bool, int or float, so batched and per-copy infos agree."""
        arrays = {
            "return": self.episode_return,
            "true_return": self.episode_true_return,
            **self._outcome_arrays(),
            "steps": self.steps,
        }
        return {name: _host(a) for name, a in arrays.items()}

    def outcomes(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """The finished episodes' outcome metrics of copies ``indices``, as plain Python values."""
        rows = list(indices)
        return outcome_rows({name: values[rows] for name, values in self.outcome_arrays().items()})

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["xp"]  # a module: restored from the backend's name
        state["_buffers"] = {}  # scratch space, rebuilt on use
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.xp = namespace(self.backend)

    # --------------------------------------------------------------- helpers
    def _asarray(self, x: Any) -> Any:
        return self.xp.asarray(x, device=self.device)

    def _zeros(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return self._asarray(np.zeros(shape, dtype=dtype))

    def _move(self, actions: Any, blocked: Any = None) -> Any:
        """Move every copy one cell in the direction of ``actions`` unless a wall is there (or,
        given ``blocked``, an (N, 2) cell per copy, unless the move would enter that cell);
        returns the (N,) mask of copies that moved."""
        target = self.pos + self._move_deltas[actions]
        moved = ~self.walls[self.rows, target[:, 0], target[:, 1]]
        if blocked is not None:
            moved = moved & ~self.xp.all(target == blocked, axis=1)
        self.pos = self.xp.where(moved[:, None], target, self.pos)
        self.heading = actions
        return moved

    def _agent_plane(self) -> Any:
        """(N, H, W) uint8 with a 1 at each copy's agent."""
        return self._cell_plane(self.pos)

    def _cell_plane(self, cells: Any) -> Any:
        """(N, H, W) uint8 with a 1 at each copy's cell of ``cells`` (N, 2)."""
        plane = self._zeros((self.num_envs, *self.grid_shape), np.uint8)
        plane[self.rows, cells[:, 0], cells[:, 1]] = 1
        return plane

    def _centre_on_agent(self, planes: Any, pos: Any) -> Any:
        """Crop ``(n, C, H, W)`` planes to ``(n, C, 2H-1, 2W-1)`` centred on ``pos`` (n, 2);
        cells beyond the grid read as walls. A view that size always holds the whole grid, so
        the crop is a paste: a frame of walls, with the grid placed so that the agent's cell
        lands in the middle (a scatter of H*W cells per copy instead of a gather of 4*H*W)."""
        n, c, h, w = planes.shape
        view = self.xp.asarray(self._wall_frame(c, h, w)[:n], copy=True)
        paste(view, planes, (h - 1) - pos[:, 0], (w - 1) - pos[:, 1])
        return view

    def _wall_frame(self, c: int, h: int, w: int) -> Any:
        """A ``(N, C, 2H-1, 2W-1)`` template of the agent-centred view beyond the grid: the
        wall channel 1, the others 0. Kept in a dict so that it is not part of the saved state."""
        key = (c, h, w)
        if key not in self._buffers:
            frame = self._zeros((self.num_envs, c, 2 * h - 1, 2 * w - 1), np.uint8)
            frame[:, self.CHANNELS.index("wall")] = 1
            self._buffers[key] = frame
        return self._buffers[key]

    def paint(self, planes: Any, tile: int) -> Any:
        """Pixels ``(N, h*tile, w*tile, 3)`` uint8 of planes ``(N, C, h, w)``. Floor channels
        fill their cells; objects and the agent fill the middle of theirs (the whole cell when
        ``tile`` < 3), so an object on a coloured floor shows both. Colours are chosen per cell
        (later channels on top) and only then spread over the cell's pixels: the per-pixel work
        is one selection, whatever the number of channels."""
        xp = self.xp
        n, _, h, w = planes.shape
        floor = thing = xp.broadcast_to(self._background, (n, h, w, 3))
        has_thing = self._zeros((n, h, w), np.bool_)
        for order in ("tile", "disc", "agent"):
            for k, name in enumerate(self.CHANNELS):
                if self.STYLES[name] != order:
                    continue
                shown = planes[:, k] > 0
                if order == "tile":
                    floor = xp.where(shown[..., None], self._colours[k], floor)
                else:
                    thing = xp.where(shown[..., None], self._colours[k], thing)
                    has_thing = has_thing | shown
        inner = np.zeros((tile, tile), dtype=bool)
        margin = tile // 4 if tile >= 3 else 0
        inner[margin : tile - margin, margin : tile - margin] = True
        on_thing = has_thing[:, :, :, None, None] & self._asarray(inner)  # (N, h, w, tile, tile)
        cells = xp.where(on_thing[..., None], thing[:, :, :, None, None, :], floor[:, :, :, None, None, :])
        return xp.reshape(xp.permute_dims(cells, (0, 1, 3, 2, 4, 5)), (n, h * tile, w * tile, 3))
