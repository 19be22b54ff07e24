"""The MiniGrid baselines (the optional ``bench`` extra): the env, its wrappers for PPO, and
RL Baselines3 Zoo's PPO settings for it."""

from __future__ import annotations

import numpy as np

from goodhart.experiments.bench.measure import BenchError

MINIGRID_ID = "MiniGrid-Empty-8x8-v0"
INSTALL_HINT = 'pip install -e ".[bench]" (or, to keep the pygame wheel: pip install -e . && pip install --no-deps "minigrid>=2.3")'

# RL Baselines3 Zoo's PPO hyperparameters for MiniGrid (hyperparams/ppo.yml, "minigrid-defaults").

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

def minigrid_image_env():
    import gymnasium as gym
    from minigrid.wrappers import ImgObsWrapper

    return ImgObsWrapper(gym.make(MINIGRID_ID))

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


def minigrid_cnn_env():
    return _channels_first(minigrid_image_env())


def minigrid_flat_env():
    import gymnasium as gym
    from minigrid.wrappers import FlatObsWrapper

    return FlatObsWrapper(gym.make(MINIGRID_ID))

__all__ = ["INSTALL_HINT", "MINIGRID_ID", "ZOO_MINIGRID", "minigrid_cnn_env", "minigrid_flat_env", "minigrid_image_env", "require_minigrid"]
