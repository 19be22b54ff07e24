"""Level curricula: which levels PPO trains on, chosen by how much there is still to learn on them.

- ``dr``: domain randomization, fresh levels from the env's generator (what training does
  without a curriculum); the curriculum only counts the distinguishing levels played.
- ``plr``: Prioritized Level Replay (Jiang et al. 2021) and, with ``robust`` (the default), its
  robust form PLR⊥ (Jiang et al. 2021b): a rollout either replays levels sampled from a
  buffer by their regret score and staleness, and the policy is updated on it, or plays fresh
  levels only to score them (no update) and admits the highest scoring to the buffer.
- ``accel``: ACCEL (Parker-Holder et al. 2022), PLR⊥ plus small edits of the levels just
  replayed; the edited levels are played the next rollout, scored and admitted like new ones.

A level is its arrays (:meth:`~goodhart.envs.core.grid.GridCore.level_arrays`): a buffer plays
back exactly the level it stored. The regret scores are in :mod:`.scores`; the buffer in
:mod:`.buffer`; the training callback in :mod:`.replay`. What a curriculum needs of an env it
asks through the env's curriculum hooks, by name (optimal return, distinguishing, edits).
"""

from goodhart.agents.curriculum.replay import METHODS, CurriculumSettings, LevelCurriculum
from goodhart.agents.curriculum.scores import SCORES

__all__ = ["METHODS", "SCORES", "CurriculumSettings", "LevelCurriculum"]
