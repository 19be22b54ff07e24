"""Render each environment's levels to the PNGs shown in the README and the docs site.

    python scripts/render_envs.py [--out docs]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import gymnasium as gym  # noqa: E402
import imageio.v3 as iio  # noqa: E402
import numpy as np  # noqa: E402

import goodhart  # noqa: E402,F401
from goodhart.envs import ENVS, file_stem  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs"), help="folder for the PNGs (default: docs)")
    parser.add_argument("--seed", type=int, default=0, help="level seed (default: 0)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for env_id, core in ENVS.items():
        frames = []
        for dist in core.DISTRIBUTIONS:
            env = gym.make(env_id, distribution=dist, render_mode="rgb_array")
            env.reset(seed=args.seed)
            frames.append(env.render())
        height = max(f.shape[0] for f in frames)
        padded = [np.pad(f, ((0, height - f.shape[0]), (0, 8), (0, 0)), constant_values=255) for f in frames]
        path = args.out / f"{file_stem(env_id)}.png"
        iio.imwrite(path, np.concatenate(padded, axis=1))
        print(f"{path}: {', '.join(core.DISTRIBUTIONS)}")


if __name__ == "__main__":
    main()
