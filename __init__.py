"""Goodhart Gridworlds: gridworlds where the reward and the true objective come apart.

Importing the package registers the environments with Gymnasium (``goodhart/LoopRace-v0``,
``goodhart/ColorMaze-v0``, ``goodhart/CornerMaze-v0``).
"""

from goodhart import envs  # noqa: F401  (registers the environment ids)

__version__ = "0.1.0"
