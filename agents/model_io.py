"""Model files that cannot run code when they are loaded.

A trained policy is two files side by side:

* ``<stem>.safetensors``: the policy's weights (``state_dict``), in the safetensors format,
  which holds tensors and nothing else;
* ``<stem>.json``: what is needed to rebuild the network around them: a format tag, the run
  config (env id, env kwargs, network), the observation and action spaces, the library
  versions that wrote it and the sha256 of the weights file.

Loading reads the JSON, rebuilds the stable-baselines3 ``ActorCriticPolicy`` from it and loads
the weights strictly. Neither pickle nor ``torch.load`` is ever used on these files, so a
model downloaded from anywhere can be loaded safely. :func:`export_sb3_zip` writes a
stable-baselines3 ``.zip`` for users of that ecosystem (loading *those* unpickles data).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.policies import ActorCriticPolicy

from goodhart.agents.files import write_atomic, write_json
from goodhart.agents.ppo import build_ppo, policy_kwargs

FORMAT = "goodhart-policy/1"
WEIGHTS_SUFFIX = ".safetensors"
META_SUFFIX = ".json"
_LIBRARIES = ("goodhart-gridworlds", "torch", "stable_baselines3", "safetensors", "gymnasium", "numpy")


class ModelFileError(ValueError):
    """A model file is missing, corrupt, truncated or not a Goodhart Gridworlds policy."""


@dataclass
class LoadedModel:
    """A policy rebuilt from a model file.

    Attributes:
        policy: the stable-baselines3 ``ActorCriticPolicy``, on the CPU, in eval mode.
        config: the run config saved with it (``env``, ``env_kwargs``, ``network``...).
        env_id: the registered env id it was trained on (``config["env"]``).
        metadata: the whole JSON file (spaces, versions, sha256...).
    """

    policy: ActorCriticPolicy
    config: dict[str, Any]
    env_id: str
    metadata: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------- paths
def paired_paths(path: str | os.PathLike[str], data_suffix: str, meta_suffix: str = META_SUFFIX) -> tuple[Path, Path]:
    """``(data, metadata)`` paths of a two-file artefact given its stem or either file."""
    text = os.fspath(path)
    for suffix in (data_suffix, meta_suffix):
        if text.endswith(suffix):
            text = text[: -len(suffix)]
            break
    return Path(text + data_suffix), Path(text + meta_suffix)


def model_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(weights, metadata)`` paths of a model given its stem (``run/model``), its
    ``.safetensors`` file or its ``.json`` file."""
    return paired_paths(path, WEIGHTS_SUFFIX)


RUN_MODEL = "model"  # a run's seed folder holds its policy as model.safetensors + model.json
_SEED_FOLDER = re.compile(r"seed(\d+)")  # a run folder holds one folder per training seed: seed0, seed1...


def _model_there(stem: Path) -> bool:
    weights, meta = model_paths(stem)
    return weights.is_file() or meta.is_file()


def run_seed_folders(folder: str | os.PathLike[str]) -> list[Path]:
    """The seed folders (``seedN``, each holding a ``model``) of a run folder, in seed order."""
    found = []
    for child in Path(folder).iterdir() if Path(folder).is_dir() else ():
        match = _SEED_FOLDER.fullmatch(child.name)
        if match and child.is_dir() and _model_there(child / RUN_MODEL):
            found.append((int(match.group(1)), child))
    return [child for _, child in sorted(found)]


def find_policies(path: str | os.PathLike[str]) -> list[Path]:
    """The policy file stems that ``path`` names, however a command is given a policy:

    * a run folder (``runs/NAME``, whose ``seedN/`` folders each hold a policy): every seed's
      ``model``, in seed order (as the evaluator takes a run: all its training seeds);
    * a seed folder (``runs/NAME/seed0``, holding ``model.safetensors`` + ``model.json``): its ``model``;
    * a policy's stem (``runs/NAME/seed0/model``), its ``.safetensors`` or its ``.json`` file.

    The files are not read here (:func:`load_policy` checks them). Raises:
        ModelFileError: one line naming ``path`` and the places looked in, if none holds a policy.
    """
    typed = os.fspath(path)
    folder = Path(typed)
    if folder.is_dir():
        if _model_there(folder / RUN_MODEL):
            return [folder / RUN_MODEL]
        seeds = run_seed_folders(folder)
        if seeds:
            return [seed / RUN_MODEL for seed in seeds]
    weights, meta = model_paths(typed)
    if weights.is_file() or meta.is_file():
        return [Path(os.fspath(weights)[: -len(WEIGHTS_SUFFIX)])]
    raise ModelFileError(f"{typed}: policy not found; looked for {looked_for(typed)}")


def looked_for(path: str | os.PathLike[str]) -> str:
    """Where :func:`find_policies` looks for the policy that ``path`` names, in words."""
    stem = os.fspath(model_paths(path)[0])[: -len(WEIGHTS_SUFFIX)]
    folder = Path(os.fspath(path))
    return (
        f"a policy file ({stem}{WEIGHTS_SUFFIX} + {stem}{META_SUFFIX}), a seed folder "
        f"({folder / RUN_MODEL}{META_SUFFIX}) and a run folder ({folder / 'seed*' / RUN_MODEL}{META_SUFFIX})"
    )


def policy_label(stem: str | os.PathLike[str]) -> str:
    """A short name of the policy at ``stem``: ``RUN/seedN`` for a run's ``model``, else the
    file's name."""
    path = Path(os.fspath(model_paths(stem)[0])[: -len(WEIGHTS_SUFFIX)])
    if path.name == RUN_MODEL and path.parent.name:
        return "/".join(part for part in (path.parent.parent.name, path.parent.name) if part)
    return path.name


def find_policy(path: str | os.PathLike[str]) -> Path:
    """The one policy file stem that ``path`` names (see :func:`find_policies`), where a single
    policy is asked for (a run's starting policy, a demonstrator, a source of segments): a run
    folder with several seeds is refused, naming them, since picking one silently would hide
    which one played."""
    stems = find_policies(path)
    if len(stems) > 1:
        raise ModelFileError(f"{os.fspath(path)}: {several_seeds(stems)}")
    return stems[0]


def several_seeds(stems: list[Path]) -> str:
    """Why a run folder of several seeds (their policies' ``stems``) is refused where one
    policy is asked for."""
    seeds = ", ".join(stem.parent.name for stem in stems)
    return f"a run folder of {len(stems)} training seeds ({seeds}), and one policy is asked for here: name its seed folder, e.g. {stems[0].parent}"


def read_tagged_json(meta_path: Path, format_tag: str, kind: str, error: type[ValueError]) -> dict[str, Any]:
    """The JSON object in ``meta_path`` if it carries ``format_tag``; else ``error`` with one
    line naming the file: missing, not JSON, not an object, or another kind of file."""
    if not meta_path.is_file():
        raise error(f"{meta_path}: {kind} metadata file not found")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{meta_path}: not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise error(f"{meta_path}: expected a JSON object, found {type(meta).__name__}")
    if meta.get("format") != format_tag:
        raise error(f"{meta_path}: not a Goodhart Gridworlds {kind} file (format tag {meta.get('format')!r}, expected {format_tag!r})")
    return meta


def read_tagged_pair(path: str | os.PathLike[str], data_suffix: str, format_tag: str, checksum_key: str, kind: str,
                     error: type[ValueError]) -> tuple[Path, dict[str, Any]]:
    """The data file and the metadata of a two-file artefact whose JSON carries
    ``format_tag`` and the data file's sha256 under ``checksum_key``; ``error`` with one line
    naming the file if either is missing, of another kind, or the data does not match."""
    data_path, meta_path = paired_paths(path, data_suffix)
    meta = read_tagged_json(meta_path, format_tag, kind, error)
    if not data_path.is_file():
        raise error(f"{data_path}: {kind} data file not found")
    if sha256_file(data_path) != meta.get(checksum_key):
        raise error(f"{data_path}: sha256 does not match the one recorded in {meta_path.name}: the file is corrupt, truncated or from another {kind}")
    return data_path, meta


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------- spaces
def _space_to_json(space: spaces.Space) -> dict[str, Any]:
    if isinstance(space, spaces.Box):
        low, high = np.unique(space.low), np.unique(space.high)
        if len(low) != 1 or len(high) != 1:
            raise ValueError("only Box observation spaces with scalar bounds can be saved")
        return {
            "type": "Box",
            "shape": list(space.shape),
            "low": low[0].item(),
            "high": high[0].item(),
            "dtype": np.dtype(space.dtype).name,
        }
    if isinstance(space, spaces.Discrete):
        if int(space.start) != 0:
            raise ValueError("only Discrete action spaces starting at 0 can be saved")
        return {"type": "Discrete", "n": int(space.n)}
    raise ValueError(f"cannot save a {type(space).__name__} space")


def _space_from_json(data: Any) -> spaces.Space:
    if not isinstance(data, Mapping):
        raise ValueError(f"a space must be a JSON object, not {data!r}")
    if data.get("type") == "Box":
        return spaces.Box(
            low=data["low"], high=data["high"], shape=tuple(int(s) for s in data["shape"]), dtype=np.dtype(data["dtype"])
        )
    if data.get("type") == "Discrete":
        return spaces.Discrete(int(data["n"]))
    raise ValueError(f"unknown space type {data.get('type')!r}")


def _versions() -> dict[str, str]:
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


# ----------------------------------------------------------- shared weights
def _aliases(state: Mapping[str, torch.Tensor]) -> dict[str, str]:
    """``{alias: canonical}`` for entries of ``state`` that are the same tensor as an earlier
    one (SB3 shares one features extractor between the actor and the critic under three
    names). safetensors stores each tensor once, so only canonical names go in the file."""
    seen: dict[tuple[Any, ...], str] = {}
    aliases: dict[str, str] = {}
    for name, tensor in state.items():
        key = (tensor.device, tensor.data_ptr(), tensor.dtype, tuple(tensor.shape), tuple(tensor.stride()))
        if tensor.numel() and key in seen:
            aliases[name] = seen[key]
        else:
            seen.setdefault(key, name)
    return aliases


def _build_policy(meta: Mapping[str, Any]) -> ActorCriticPolicy:
    observation_space = _space_from_json(meta["observation_space"])
    action_space = _space_from_json(meta["action_space"])
    policy = ActorCriticPolicy(
        observation_space,
        action_space,
        lambda _progress: 0.0,  # constant schedule: the optimizer is never stepped
        **policy_kwargs(meta["config"]["network"]),
    )
    return policy.to("cpu")


# ------------------------------------------------------------------ save
def save_model(model: PPO, path: str | os.PathLike[str], config: Mapping[str, Any]) -> None:
    """Write ``model``'s policy to ``<path>.safetensors`` and ``<path>.json``.

    Args:
        model: a trained stable-baselines3 PPO (built by :func:`goodhart.agents.ppo.build_ppo`).
        path: the file stem, e.g. ``run/model`` (a ``.safetensors`` or ``.json`` suffix is
            taken off).
        config: the run config, saved as given; it must hold ``env``, ``env_kwargs`` and
            ``network`` (``channels``, ``strides``, ``features_dim``, ``net_arch``) and be
            JSON-serialisable.
    """
    save_policy_tensors(model.policy.state_dict(), model.observation_space, model.action_space, path, config)


def save_policy_tensors(state: Mapping[str, torch.Tensor], observation_space: spaces.Space, action_space: spaces.Space,
                        path: str | os.PathLike[str], config: Mapping[str, Any]) -> None:
    """Write a policy's weights (``state``: the tensors of the network ``config["network"]``
    describes, under its names; each shared tensor once is enough) as :func:`save_model` does:
    the way a trainer the project did not write (``goodhart.agents.example_ppo``) hands its
    policy to the project's tools. The weights are checked against that network first."""
    from safetensors.torch import save_file

    missing = [key for key in ("env", "env_kwargs", "network") if key not in config]
    if missing:
        raise ValueError(f"config lacks {missing}; it needs 'env', 'env_kwargs' and 'network'")
    expected = _build_policy({"observation_space": _space_to_json(observation_space), "action_space": _space_to_json(action_space),
                              "config": dict(config)}).state_dict()
    aliases = _aliases(expected)
    problems = _mismatches(state, expected)
    if problems:
        raise ValueError(f"the weights do not fit the network {dict(config['network'])}: {problems}")
    weights_path, meta_path = model_paths(path)
    tensors = {
        name: tensor.detach().to("cpu").contiguous().clone()
        for name, tensor in state.items()
        if name not in aliases
    }
    write_atomic(weights_path, lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}))
    meta = {
        "format": FORMAT,
        "weights": weights_path.name,
        "weights_sha256": sha256_file(weights_path),
        "config": dict(config),
        "observation_space": _space_to_json(observation_space),
        "action_space": _space_to_json(action_space),
        "shared_tensors": aliases,
        "versions": _versions(),
    }
    write_json(meta_path, meta)


# ------------------------------------------------------------------ load
def _read_meta(meta_path: Path) -> dict[str, Any]:
    meta = read_tagged_json(meta_path, FORMAT, "policy", ModelFileError)
    for key in ("weights_sha256", "config", "observation_space", "action_space"):
        if key not in meta:
            raise ModelFileError(f"{meta_path}: the field {key!r} is missing")
    config = meta["config"]
    if not isinstance(config, dict) or not all(k in config for k in ("env", "env_kwargs", "network")):
        raise ModelFileError(f"{meta_path}: 'config' must be an object with 'env', 'env_kwargs' and 'network'")
    return meta


def _mismatches(tensors: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> str:
    """A short description of how ``tensors`` differ from the network's ``expected`` state
    (each shared tensor named once); empty if they fit."""
    shared = _aliases(expected)

    def listed(names: list[str], sep: str = ", ") -> str:
        shown = sep.join(names[:3])
        return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")

    missing = [name for name in expected if name not in tensors and name not in shared]
    unexpected = [name for name in tensors if name not in expected]
    wrong = [
        f"{name} is {tuple(tensors[name].shape)} {tensors[name].dtype}, "
        f"the network has {tuple(expected[name].shape)} {expected[name].dtype}"
        for name in expected
        if name in tensors and name not in shared
        and (tensors[name].shape != expected[name].shape or tensors[name].dtype != expected[name].dtype)
    ]
    parts = []
    if missing:
        parts.append(f"missing tensors {listed(missing)}")
    if unexpected:
        parts.append(f"unexpected tensors {listed(unexpected)}")
    if wrong:
        parts.append(listed(wrong, "; "))
    return "; ".join(parts)


def load_policy(path: str | os.PathLike[str]) -> LoadedModel:
    """Rebuild a saved policy from its stem, its ``.safetensors`` file or its ``.json`` file.

    Raises:
        ModelFileError: a file is missing, not valid JSON, not tagged as a Goodhart policy,
            its weights do not match the recorded sha256 or cannot be parsed, or they do not
            fit the network the config describes.
    """
    from safetensors.torch import load_file

    weights_path, meta_path = model_paths(path)
    meta = _read_meta(meta_path)
    if not weights_path.is_file():
        raise ModelFileError(f"{weights_path}: model weights file not found")
    digest = sha256_file(weights_path)
    if digest != meta["weights_sha256"]:
        raise ModelFileError(
            f"{weights_path}: sha256 {digest} does not match {meta['weights_sha256']} recorded in "
            f"{meta_path.name}: the weights file is corrupt, truncated or from another model"
        )
    try:
        tensors = load_file(str(weights_path), device="cpu")
    except Exception as exc:  # safetensors raises its own error type (and OSError, ValueError)
        raise ModelFileError(f"{weights_path}: not a readable safetensors file ({exc})") from exc
    try:
        policy = _build_policy(meta)
    except Exception as exc:
        raise ModelFileError(f"{meta_path}: cannot build the network it describes ({type(exc).__name__}: {exc})") from exc
    expected = policy.state_dict()
    for alias, canonical in _aliases(expected).items():
        if alias not in tensors and canonical in tensors:
            tensors[alias] = tensors[canonical]
    problems = _mismatches(tensors, expected)
    if problems:
        raise ModelFileError(
            f"{weights_path}: the weights do not fit the network described in {meta_path.name}: {problems}"
        )
    try:
        policy.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:  # should not happen after the checks above
        message = " ".join(str(exc).split())
        raise ModelFileError(
            f"{weights_path}: the weights do not fit the network described in {meta_path.name} ({message})"
        ) from exc
    policy.set_training_mode(False)
    policy.eval()
    return LoadedModel(policy=policy, config=meta["config"], env_id=meta["config"]["env"], metadata=meta)


# ---------------------------------------------------------------- export
def export_sb3_zip(model_path: str | os.PathLike[str], zip_path: str | os.PathLike[str]) -> None:
    """Write a stable-baselines3 ``PPO`` ``.zip`` of a saved model, for users of that ecosystem
    (``stable_baselines3.PPO.load(zip_path)``).

    The PPO is built on ``make_vec(config["env"], 1, **config["env_kwargs"])`` with the
    config's ``ppo`` hyperparameters, if any (an entropy schedule, which SB3 lacks, is left
    out: the zip holds the starting ``ent_coef``), and the saved weights. Its policy takes the
    env's observations as they come, pixels included; to train a pixel policy further on an
    env, load it with :class:`goodhart.agents.ppo.GridPPO` (plain ``PPO.load(zip, env=...)``
    would wrap the env in ``VecTransposeImage``).

    Warning:
        Loading a stable-baselines3 zip unpickles data from it, which can run arbitrary code:
        only load SB3 zips from sources you trust. Share the ``.safetensors`` + ``.json``
        pair (see :func:`load_policy`) instead.
    """
    from goodhart.envs import make_vec

    loaded = load_policy(model_path)
    config = loaded.config
    env = make_vec(config["env"], 1, **config["env_kwargs"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. n_steps * 1 env not a multiple of batch_size
            model = build_ppo(env, ppo=config.get("ppo") or {}, network=config["network"], seed=None)
        model.policy.load_state_dict(loaded.policy.state_dict(), strict=True)
        model.save(os.fspath(zip_path))
    finally:
        env.close()


__all__ = [
    "FORMAT",
    "RUN_MODEL",
    "LoadedModel",
    "ModelFileError",
    "export_sb3_zip",
    "find_policies",
    "find_policy",
    "load_policy",
    "looked_for",
    "model_paths",
    "policy_label",
    "run_seed_folders",
    "save_model",
    "several_seeds",
]
