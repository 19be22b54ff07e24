"""The benchmark harness: this project's speed against MiniGrid and stable-baselines3, in one run.

Sections (``--only``):

``env``
    Environment steps/s with random actions, observations produced: the batched VecEnv
    (``make_vec``, auto-reset and infos included) and the raw core (``core.step`` +
    ``core.observe``, no resets) of ColorMaze and LoopRace at N = 1, 64, 1024, against
    ``MiniGrid-Empty-8x8-v0`` (``ImgObsWrapper``) alone and in gymnasium's ``SyncVectorEnv`` x 8;
    and ``gymnasium.make_vec(id, 64)`` (the registered vector entry point, the batched core)
    against ``make_vec(id, 64, vectorization_mode="sync")`` (64 single envs).
``ppo``
    stable-baselines3 PPO training steps/s, one torch thread, each setup in its own process
    (whose peak RSS is recorded): ColorMaze with ``experiments/configs/colormaze.yaml``;
    MiniGrid-Empty-8x8 with the same GridCNN and PPO settings; MiniGrid-Empty-8x8 with the
    RL Zoo's MiniGrid settings. One warm-up rollout + update, then ``repeats`` timed ones, each
    split into policy forward passes, env stepping, the rest of the rollout, and the update.
``time_to_result``
    Wall time and peak RSS of ``goodhart reproduce NAME --quick`` (and the full mode) as a
    subprocess, in a fresh folder. Minutes: only run when asked for.

Every figure is the median of ``repeats`` measurements after a warm-up, with min and max;
ratios are against the baselines measured in the same run. MiniGrid is the optional ``bench``
extra.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

SECTIONS = ("env", "ppo", "time_to_result")
DEFAULT_SECTIONS = ("env", "ppo")
MINIGRID_ID = "MiniGrid-Empty-8x8-v0"
OUR_ENVS = {"ColorMaze": "goodhart/ColorMaze-v0", "LoopRace": "goodhart/LoopRace-v0"}
ENV_SIZES = (1, 64, 1024)
GYM_VECTOR_SIZE = 64
SYNC_COPIES = 8
INSTALL_HINT = 'pip install -e ".[bench]" (or, to keep the pygame wheel: pip install -e . && pip install --no-deps "minigrid>=2.3")'

# RL Baselines3 Zoo's PPO hyperparameters for MiniGrid (hyperparams/ppo.yml, "minigrid-defaults").
ZOO_MINIGRID = {
    "n_envs": 8,
    "ppo": {
        "n_steps": 128,
        "batch_size": 64,
        "gae_lambda": 0.95,
        "gamma": 0.99,
        "n_epochs": 10,
        "ent_coef": 0.0,
        "learning_rate": 2.5e-4,
        "clip_range": 0.2,
    },
}

# setup -> (short label, what it is)
PPO_SETUPS = {
    "colormaze": ("ColorMaze PPO, colormaze.yaml", "GridCNN [16, 32] strides [1, 2] -> 128 on 4x13x13 agent-centred planes; 16 envs, n_steps 128, batch 512, 4 epochs"),
    "colormaze_full": ("ColorMaze PPO, full view", "colormaze.yaml with view=full: the same network on 4x7x7 whole-maze planes, the input size of MiniGrid's 7x7 view"),
    "minigrid_cnn": ("MiniGrid PPO, our CNN and settings", "the same GridCNN and PPO settings on MiniGrid-Empty-8x8, ImgObsWrapper transposed to 3x7x7 (object indices 0..10, not normalized)"),
    "minigrid_zoo": ("MiniGrid PPO, RL Zoo settings", "RL Zoo's MiniGrid PPO: FlatObsWrapper (2835 inputs), VecNormalize, MlpPolicy 64-64, 8 envs, n_steps 128, batch 64, 10 epochs, lr 2.5e-4"),
}

RATIOS = (
    ("env/ColorMaze/vecenv/1024", "env/minigrid/single", "ColorMaze VecEnv N=1024 / MiniGrid single env"),
    ("env/LoopRace/vecenv/1024", "env/minigrid/single", "LoopRace VecEnv N=1024 / MiniGrid single env"),
    ("env/ColorMaze/vecenv/1", "env/minigrid/single", "ColorMaze VecEnv N=1 / MiniGrid single env"),
    ("env/ColorMaze/vecenv/1024", "env/minigrid/sync8", "ColorMaze VecEnv N=1024 / MiniGrid SyncVectorEnv x8"),
    ("env/minigrid/sync8", "env/minigrid/single", "MiniGrid SyncVectorEnv x8 / MiniGrid single env"),
    ("env/ColorMaze/core/1024", "env/ColorMaze/vecenv/1024", "ColorMaze raw core / VecEnv, N=1024"),
    *((f"env/{name}/gym_vector/{GYM_VECTOR_SIZE}", f"env/{name}/gym_sync/{GYM_VECTOR_SIZE}",
       f"{name} gymnasium.make_vec N={GYM_VECTOR_SIZE}: vector entry point / sync wrapper") for name in OUR_ENVS),
    ("ppo/colormaze", "ppo/minigrid_cnn", "ColorMaze PPO / MiniGrid PPO with the same CNN and settings"),
    ("ppo/colormaze_full", "ppo/minigrid_cnn", "ColorMaze PPO full view (7x7 input) / MiniGrid PPO, same CNN, settings and input size"),
    ("ppo/colormaze", "ppo/minigrid_zoo", "ColorMaze PPO / MiniGrid PPO with RL Zoo settings"),
)


class BenchError(RuntimeError):
    """A benchmark that cannot run; the message says why and what to do."""


# ------------------------------------------------------------------ helpers
def require_minigrid() -> str:
    """MiniGrid's version, or a BenchError naming the ``bench`` extra."""
    try:
        import minigrid
    except ImportError:
        raise BenchError(
            "the MiniGrid baselines need minigrid, from the optional 'bench' extra, which is not "
            f"installed: {INSTALL_HINT}; or pass --skip-minigrid to leave the MiniGrid rows out"
        ) from None
    return str(getattr(minigrid, "__version__", "unknown"))


def parse_sections(only: Sequence[str] | None) -> list[str]:
    """The sections asked for (comma-separated or repeated names), in run order."""
    if not only:
        return list(DEFAULT_SECTIONS)
    asked = {item.strip() for value in only for item in value.split(",") if item.strip()}
    unknown = sorted(asked - set(SECTIONS))
    if unknown:
        raise BenchError(f"--only {','.join(unknown)}: unknown section(s); valid ones: {', '.join(SECTIONS)}")
    return [s for s in SECTIONS if s in asked]


def spread(values: Sequence[float]) -> dict[str, Any]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": list(values)}


def peak_rss_mib() -> float:
    """This process's peak resident set size (Linux reports KiB, macOS bytes)."""
    import resource  # POSIX only, like os.wait4 below

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def machine() -> dict[str, Any]:
    """What the figures were taken on."""
    import gymnasium
    import stable_baselines3
    import torch

    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        import minigrid

        minigrid_version = str(getattr(minigrid, "__version__", "unknown"))
    except ImportError:
        minigrid_version = None
    return {
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "gymnasium": gymnasium.__version__,
        "minigrid": minigrid_version,
    }


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------- 1. env steps/s
def steps_per_second(step: Callable[[], None], batch: int, seconds: float, min_calls: int = 2) -> float:
    """Call ``step`` (advancing ``batch`` env steps) for at least ``seconds``; steps/s."""
    calls = 0
    start = time.perf_counter()
    while True:
        step()
        calls += 1
        elapsed = time.perf_counter() - start
        if calls >= min_calls and elapsed >= seconds:
            return calls * batch / elapsed


def measure_steps(step: Callable[[], None], batch: int, seconds: float, repeats: int) -> list[float]:
    steps_per_second(step, batch, seconds / 2)  # warm-up
    return [steps_per_second(step, batch, seconds) for _ in range(repeats)]


def _action_cycle(n_actions: int, shape: tuple[int, ...], seed: int = 0, pool: int = 512):
    """An endless cycle over a pool of pre-drawn random actions of ``shape``."""
    actions = np.random.default_rng(seed).integers(0, n_actions, size=(pool, *shape))
    while True:
        yield from actions


def our_steppers(env_id: str, n: int) -> dict[str, Callable[[], None]]:
    """Step functions of the VecEnv (auto-reset, infos) and of its raw core (no resets)."""
    from goodhart.envs import make_vec

    venv = make_vec(env_id, n, seed=0)
    venv.reset()
    vec_actions = _action_cycle(venv.action_space.n, (n,), seed=1)

    def vec_step() -> None:
        venv.step(next(vec_actions))

    core = make_vec(env_id, n, seed=0)
    core.reset()
    raw = core.core
    core_actions = _action_cycle(core.action_space.n, (n,), seed=1)

    def core_step() -> None:
        raw.step(next(core_actions))
        raw.observe()

    return {"vecenv": vec_step, "core": core_step}


def gymnasium_steppers(env_id: str, n: int) -> dict[str, Callable[[], None]]:
    """Step functions of ``gymnasium.make_vec``: by default (the vector entry point: the batched
    core) and with ``vectorization_mode="sync"`` (Gymnasium's wrapper of n single envs)."""
    import gymnasium as gym

    steppers = {}
    for kind, mode in (("gym_vector", None), ("gym_sync", "sync")):
        envs = gym.make_vec(env_id, n, vectorization_mode=mode)
        envs.reset(seed=0)
        actions = _action_cycle(envs.single_action_space.n, (n,), seed=1)
        steppers[kind] = lambda envs=envs, actions=actions: envs.step(next(actions))
    return steppers


def minigrid_image_env():
    import gymnasium as gym
    from minigrid.wrappers import ImgObsWrapper

    return ImgObsWrapper(gym.make(MINIGRID_ID))


def minigrid_steppers() -> dict[str, Callable[[], None]]:
    import gymnasium as gym

    env = minigrid_image_env()
    env.reset(seed=0)
    single_actions = (int(a) for a in _action_cycle(env.action_space.n, (), seed=1))

    def single_step() -> None:
        _, _, terminated, truncated, _ = env.step(next(single_actions))
        if terminated or truncated:
            env.reset()

    venv = gym.vector.SyncVectorEnv([minigrid_image_env for _ in range(SYNC_COPIES)])
    venv.reset(seed=0)
    sync_actions = _action_cycle(venv.single_action_space.n, (SYNC_COPIES,), seed=1)

    def sync_step() -> None:
        venv.step(next(sync_actions))  # gymnasium's autoreset: a done copy resets on its next step

    return {"single": single_step, "sync8": sync_step}


def bench_env(repeats: int, quick: bool, minigrid: bool) -> Iterator[dict[str, Any]]:
    seconds = 0.05 if quick else 1.0
    for name, env_id in OUR_ENVS.items():
        for n in ENV_SIZES:
            for kind, step in our_steppers(env_id, n).items():
                label = f"{name} {'VecEnv' if kind == 'vecenv' else 'raw core'} N={n}"
                _log(f"bench: {label}")
                yield {"id": f"env/{name}/{kind}/{n}", "section": "env", "label": label, "unit": "steps/s", **spread(measure_steps(step, n, seconds, repeats))}
        for kind, step in gymnasium_steppers(env_id, GYM_VECTOR_SIZE).items():
            label = f"{name} gymnasium.make_vec N={GYM_VECTOR_SIZE}, {'vector entry point' if kind == 'gym_vector' else 'sync wrapper'}"
            _log(f"bench: {label}")
            yield {"id": f"env/{name}/{kind}/{GYM_VECTOR_SIZE}", "section": "env", "label": label, "unit": "steps/s", **spread(measure_steps(step, GYM_VECTOR_SIZE, seconds, repeats))}
    if minigrid:
        for kind, step in minigrid_steppers().items():
            batch = SYNC_COPIES if kind == "sync8" else 1
            label = f"MiniGrid-Empty-8x8 {'SyncVectorEnv x8' if kind == 'sync8' else 'single env'}"
            _log(f"bench: {label}")
            yield {"id": f"env/minigrid/{kind}", "section": "env", "label": label, "unit": "steps/s", **spread(measure_steps(step, batch, seconds, repeats))}


# ------------------------------------------------------------ 2. PPO steps/s
def _timed_vec_env(venv, clock: dict[str, float]):
    from stable_baselines3.common.vec_env import VecEnvWrapper

    class TimedVecEnv(VecEnvWrapper):
        """Adds the time spent in ``step_async`` + ``step_wait`` to ``clock['env']``."""

        def reset(self):
            return self.venv.reset()

        def step_async(self, actions):
            start = time.perf_counter()
            self.venv.step_async(actions)
            clock["env"] += time.perf_counter() - start

        def step_wait(self):
            start = time.perf_counter()
            result = self.venv.step_wait()
            clock["env"] += time.perf_counter() - start
            return result

    return TimedVecEnv(venv)


def _channels_first(env):
    """(H, W, C) image observations -> (C, H, W), kept uint8 (MiniGrid's object indices 0..10)."""
    import gymnasium as gym
    from gymnasium import spaces

    class ChannelsFirst(gym.ObservationWrapper):
        def __init__(self, inner):
            super().__init__(inner)
            box = inner.observation_space
            self.observation_space = spaces.Box(
                low=np.transpose(box.low, (2, 0, 1)), high=np.transpose(box.high, (2, 0, 1)), dtype=box.dtype
            )

        def observation(self, observation):
            return np.ascontiguousarray(np.transpose(observation, (2, 0, 1)))

    return ChannelsFirst(env)


def _minigrid_cnn_env():
    return _channels_first(minigrid_image_env())


def _minigrid_flat_env():
    import gymnasium as gym
    from minigrid.wrappers import FlatObsWrapper

    return FlatObsWrapper(gym.make(MINIGRID_ID))


def ppo_measurement(setup: str, repeats: int, quick: bool, seed: int = 0) -> dict[str, Any]:
    """Time ``1 + repeats`` PPO iterations (rollout + update) of ``setup`` in this process;
    the first is a warm-up. Meant to run in a child process of its own (see :func:`bench_ppo`)."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor, VecNormalize

    from goodhart.agents.ppo import build_ppo, set_torch_threads, silent_logger
    from goodhart.envs import make_vec
    from goodhart.experiments.config import CONFIG_DIR, resolve

    set_torch_threads(1)
    cfg, _ = resolve(None, CONFIG_DIR / "colormaze.yaml", [], {})
    ppo = cfg.ppo.model_dump()
    n_envs = cfg.n_envs
    if setup == "minigrid_zoo":
        n_envs, ppo = ZOO_MINIGRID["n_envs"], dict(ZOO_MINIGRID["ppo"])
    if quick:
        ppo.update(n_steps=16, n_epochs=1, batch_size=min(ppo["batch_size"], 16 * n_envs))
    clock = {"env": 0.0, "forward": 0.0}
    if setup in ("colormaze", "colormaze_full"):
        view = {"view": "full"} if setup == "colormaze_full" else {}
        venv = VecMonitor(make_vec(cfg.env, n_envs, seed=seed, **cfg.env_kwargs, **view))
    elif setup == "minigrid_cnn":
        venv = VecMonitor(DummyVecEnv([_minigrid_cnn_env] * n_envs))
    elif setup == "minigrid_zoo":
        venv = VecNormalize(VecMonitor(DummyVecEnv([_minigrid_flat_env] * n_envs)), gamma=ppo["gamma"])
    else:
        raise BenchError(f"unknown PPO setup {setup!r}; valid ones: {list(PPO_SETUPS)}")
    env = _timed_vec_env(venv, clock)
    if setup == "minigrid_zoo":
        model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **ppo)
        model.set_logger(silent_logger())
    else:
        model = build_ppo(env, ppo=ppo, network=cfg.network.model_dump(), seed=seed)

    def timed(fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                clock["forward"] += time.perf_counter() - start

        return wrapper

    # Rollout forward passes: the policy's forward and the value bootstraps; the update uses
    # evaluate_actions, so these only count during rollouts.
    model.policy.forward = timed(model.policy.forward)
    model.policy.predict_values = timed(model.policy.predict_values)
    iterations: list[dict[str, float]] = []
    collect, train = model.collect_rollouts, model.train

    def timed_collect(*args, **kwargs):
        clock["env"] = clock["forward"] = 0.0
        start = time.perf_counter()
        result = collect(*args, **kwargs)
        rollout = time.perf_counter() - start
        iterations.append({"rollout": rollout, "forward": clock["forward"], "env": clock["env"], "other": rollout - clock["forward"] - clock["env"]})
        return result

    def timed_train(*args, **kwargs):
        start = time.perf_counter()
        result = train(*args, **kwargs)
        iterations[-1]["update"] = time.perf_counter() - start
        return result

    model.collect_rollouts, model.train = timed_collect, timed_train
    rollout_size = ppo["n_steps"] * n_envs
    model.learn(rollout_size * (1 + repeats))
    measured = iterations[1:]
    rates = [rollout_size / (it["rollout"] + it["update"]) for it in measured]
    parts = ("forward", "env", "other", "update")
    breakdown = {part: statistics.median(it[part] for it in measured) for part in parts}
    total = sum(breakdown.values())
    return {
        "rates": rates,
        "rollout_size": rollout_size,
        "n_envs": n_envs,
        "ppo": ppo,
        "iteration_seconds": spread([it["rollout"] + it["update"] for it in measured]),
        "breakdown_seconds": breakdown,
        "breakdown_share": {part: breakdown[part] / total for part in parts},
        "torch_threads": torch.get_num_threads(),
        "peak_rss_mib": peak_rss_mib(),
    }


def run_child(setup: str, repeats: int, quick: bool, timeout: float = 1800) -> dict[str, Any]:
    """:func:`ppo_measurement` in a fresh Python process; its result."""
    with tempfile.TemporaryDirectory(prefix="goodhart-bench-") as tmp:
        result_path = Path(tmp) / "result.json"
        spec = json.dumps({"setup": setup, "repeats": repeats, "quick": quick})
        cmd = [sys.executable, "-m", "goodhart.experiments.bench", "--child", spec, str(result_path)]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if proc.returncode != 0 or not result_path.exists():
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise BenchError(f"the PPO measurement {setup!r} failed (exit {proc.returncode}):\n{tail}")
        return json.loads(result_path.read_text())


def bench_ppo(repeats: int, quick: bool, minigrid: bool) -> Iterator[dict[str, Any]]:
    for setup, (label, description) in PPO_SETUPS.items():
        if setup.startswith("minigrid") and not minigrid:
            continue
        _log(f"bench: {label}")
        result = run_child(setup, repeats, quick)
        rates = result.pop("rates")
        yield {"id": f"ppo/{setup}", "section": "ppo", "label": label, "description": description, "unit": "steps/s", **spread(rates), **result}


# -------------------------------------------------------- 3. time to result
def time_reproduction(name: str, quick: bool) -> dict[str, Any]:
    """Wall time and peak RSS (of the largest process in its tree) of ``goodhart reproduce``,
    run in a fresh temporary folder so that nothing is skipped as already done."""
    folder = Path(tempfile.mkdtemp(prefix="goodhart-bench-reproduce-"))
    try:
        cmd = [sys.executable, "-m", "goodhart.cli", "reproduce", name, "--out", str(folder / "out")]
        if quick:
            cmd.append("--quick")
        with (folder / "log.txt").open("w") as log:
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)  # usage covers the process and its descendants
            wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
        log_lines = (folder / "log.txt").read_text().strip().splitlines()
        log_tail = log_lines[-20:]
        checks = [line for line in log_lines if line.startswith(("PASS: ", "FAIL: "))]
        results = folder / "out" / "results.json"
        sweep = json.loads(results.read_text()).get("sweep", {}) if results.exists() else {}
        if proc.returncode not in (0, 1) or not results.exists():
            raise BenchError(f"goodhart reproduce {name}{' --quick' if quick else ''} failed (exit {proc.returncode}):\n" + "\n".join(log_tail))
        peak = usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)
        mode = "quick" if quick else "full"
        return {
            "id": f"time_to_result/{name}/{mode}",
            "section": "time_to_result",
            "label": f"goodhart reproduce {name}{' --quick' if quick else ''}",
            "unit": "s",
            **spread([wall]),
            "train_seconds": sweep.get("train_seconds"),
            "checks_passed": proc.returncode == 0,
            "checks": checks,
            "peak_rss_mib": peak,
            "command": shlex.join(["goodhart", *cmd[3:5], *cmd[7:]]),  # without the temporary --out
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_time_to_result(name: str, modes: Sequence[str]) -> Iterator[dict[str, Any]]:
    for mode in modes:
        _log(f"bench: goodhart reproduce {name} ({mode}); this takes minutes")
        yield time_reproduction(name, quick=mode == "quick")


# ------------------------------------------------------------------ the run
def ratios(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id = {row["id"]: row for row in rows}
    out = []
    for num, den, label in RATIOS:
        if num in by_id and den in by_id:
            out.append({"label": label, "numerator": num, "denominator": den, "value": by_id[num]["median"] / by_id[den]["median"]})
    return out


def run_bench(
    *,
    sections: Sequence[str] = DEFAULT_SECTIONS,
    repeats: int = 5,
    quick: bool = False,
    skip_minigrid: bool = False,
    reproduction: str = "maze-misgeneralization",
    reproduce_modes: Sequence[str] | None = None,
    command: str | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the sections asked for; the JSON-ready record (meta, results, ratios, notes).
    ``progress`` is called with the partial record after every figure."""
    if repeats < 1:
        raise BenchError(f"--repeats {repeats}: must be at least 1")
    minigrid_version = None if skip_minigrid else require_minigrid()
    notes = []
    if skip_minigrid:
        notes.append("MiniGrid rows skipped (--skip-minigrid): no baselines, so no ratios against MiniGrid")
    if reproduce_modes is None:
        reproduce_modes = ["quick"] if quick else ["quick", "full"]
    meta = {
        **machine(),
        "minigrid": minigrid_version,
        "command": command or shlex.join(sys.argv),
        "sections": list(sections),
        "repeats": repeats,
        "quick": quick,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "loadavg_start": loadavg(),
    }
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()

    def record(partial: bool) -> dict[str, Any]:
        meta["loadavg_end"] = loadavg()
        meta["bench_seconds"] = round(time.perf_counter() - started, 1)
        meta["partial"] = partial
        return {"meta": meta, "results": rows, "ratios": ratios(rows), "notes": notes}

    if "time_to_result" in sections:
        notes.append("time to result: one run per mode (no repeats); peak RSS is the largest single process of the run's tree")
    runs = {
        "env": lambda: bench_env(repeats, quick, not skip_minigrid),
        "ppo": lambda: bench_ppo(repeats, quick, not skip_minigrid),
        "time_to_result": lambda: bench_time_to_result(reproduction, reproduce_modes),
    }
    for section in SECTIONS:
        if section in sections:
            for row in runs[section]():
                rows.append(row)
                if progress is not None:
                    progress(record(partial=True))  # a killed run keeps what it measured
    return record(partial=False)


# ------------------------------------------------------------------ output
def human(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.0f} s" if value >= 10 else f"{value:.2f} s"
    for bound, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= bound:
            return f"{value / bound:.3g}{suffix}"
    return f"{value:.3g}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r) for r in rows)]


def format_tables(record: dict[str, Any]) -> str:
    """The record as Markdown tables: figures, PPO time breakdown, ratios."""
    meta = record["meta"]
    out = [
        f"Machine: {meta['nproc']} CPUs usable ({meta['cpu_model']}), Python {meta['python']}, torch {meta['torch']}, "
        f"numpy {meta['numpy']}, stable-baselines3 {meta['stable_baselines3']}, gymnasium {meta['gymnasium']}, "
        f"minigrid {meta['minigrid'] or 'not used'}; load average {meta['loadavg_start']} at start, {meta['loadavg_end']} at end.",
        f"Each figure: median of {meta['repeats']} repeats after a warm-up{' (--quick: tiny sizes, not comparable)' if meta['quick'] else ''}.",
        "",
    ]
    results = record["results"]
    if results:
        body = []
        for row in results:
            extra = f"peak RSS {row['peak_rss_mib']:.0f} MiB" if "peak_rss_mib" in row else ""
            if row.get("checks"):
                passed = sum(line.startswith("PASS") for line in row["checks"])
                extra += f"; checks {passed}/{len(row['checks'])} pass"
            body.append([row["label"], human(row["median"], row["unit"]), f"{human(row['min'], row['unit'])} - {human(row['max'], row['unit'])}", row["unit"], extra])
        out += _table(["figure", "median", "min - max", "unit", "memory"], body)
    if any(row["section"] == "env" for row in results):
        out += [
            "",
            "VecEnv: `make_vec(...).step(random actions)`, auto-reset, infos and observations included. "
            "Raw core: `venv.core.step(actions)` + `venv.core.observe()`, no resets nor infos. "
            "gymnasium.make_vec: the default (our vector entry point) against `vectorization_mode='sync'`, auto-reset and infos included. "
            "MiniGrid: `ImgObsWrapper(gym.make('MiniGrid-Empty-8x8-v0'))`, reset when done; 7 actions.",
        ]
    if any(row["section"] == "ppo" for row in results):
        out += ["", *(f"{row['label']}: {row['description']}." for row in results if row["section"] == "ppo")]
    breakdown = [row for row in results if "breakdown_share" in row]
    if breakdown:
        out += ["", "Where a PPO iteration's time goes (medians over the timed iterations):", ""]
        body = []
        for row in breakdown:
            s, share = row["breakdown_seconds"], row["breakdown_share"]
            cells = [f"{s[p]:.3f} s ({100 * share[p]:.0f} %)" for p in ("forward", "env", "other", "update")]
            body.append([row["id"].split("/", 1)[1], str(row["rollout_size"]), f"{row['iteration_seconds']['median']:.3f} s", *cells])
        out += _table(["setup", "steps/iteration", "iteration", "rollout: forward passes", "rollout: env step", "rollout: buffer, other", "update"], body)
    if record["ratios"]:
        out += ["", *_table(["ratio (medians, same run)", "value"], [[r["label"], f"{r['value']:.3g}x"] for r in record["ratios"]])]
    if record["notes"]:
        out += ["", *(f"Note: {note}" for note in record["notes"])]
    return "\n".join(out)


def write_json(record: dict[str, Any], path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)  # whole or not at all, even if the run is killed while writing


def _child_main(argv: Sequence[str]) -> int:
    spec, result_path = json.loads(argv[0]), Path(argv[1])
    result = ppo_measurement(spec["setup"], spec["repeats"], spec["quick"])
    result_path.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        sys.exit(_child_main(sys.argv[2:]))
    sys.exit("usage: goodhart bench --help (this module's own entry point is for the harness's child processes)")
