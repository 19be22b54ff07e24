"""The level-seed namespace: every base from which a part of the project draws its levels.

A level depends on its seed alone (copy ``i`` of a vector env seeded ``s`` plays the level of
``gym.make(env_id).reset(seed=s + i)``), so seeds are all that keeps, say, the levels a policy
is judged on apart from those it was trained on. Each base is named here once; the offsets
``+ i`` (copy), ``+ k * SOURCE_SEED_STRIDE`` (source) and ``+ run seed`` are added by the
code that uses it.

==========================  ===================================  =================================================
levels of                   level seeds                          used by
==========================  ===================================  =================================================
training                    ``s + i``                            a run seeded ``s`` (0-4 in the reproductions)
                                                                 trains copy ``i < n_envs`` on level seed ``s + i``
periodic evaluation         ``EVAL_LEVEL_SEED + i``              evaluation during training (``eval.level_seed``),
                            (1,000,000)                          ``goodhart evaluate``'s default, heatmaps, the
                                                                 shipped policies' summaries, and the RLHF
                                                                 experiment's measurements
held-out evaluation         ``HELD_OUT_LEVEL_SEED + i``          the evaluation of sweeps and reproductions
                            (2,000,000)                          (``evaluate.level_seed``'s default): levels no run
                                                                 trains or evaluates on while training
RLHF evaluation states      ``RLHF_STATE_LEVEL_SEED``            the fixed states on which KL to the initial policy
                            ``+ SOURCE_SEED_STRIDE * k + i``     is measured (source ``k``)
                            (4,000,000)
fixed RLHF segment pool     ``RLHF_SEGMENT_LEVEL_SEED``          the segments on which an RLHF study correlates each
                            ``+ SOURCE_SEED_STRIDE * k + i``     reward model with the salient event (source ``k``)
                            (2,500,000)
best-of-n episodes          ``BEST_OF_N_LEVEL_SEED + j``         the levels best-of-n samples the starting policy on
                            (2,600,000)
SFT demonstrations          ``DEMONSTRATION_LEVEL_SEED + s``     the episodes a starting policy is cloned from
                            ``+ SOURCE_SEED_STRIDE * k + i``     (run seed ``s``, demonstrator ``k``)
                            (3,000,000)
preference segments         ``p + SOURCE_SEED_STRIDE * k + i``   source ``k`` of a preference pool seeded ``p``
                                                                 (``goodhart preferences --seed``; the RLHF runner:
                                                                 the run's seed, so these are training-seed levels)
curriculum levels           streams ``[24, s, 0, k]``            the k-th new level of a level curriculum
                            (``LEVEL_STREAM``)                   (``goodhart.agents.curriculum``) in a run seeded
                                                                 ``s``; its replay and edit draws: ``[24, s, 1]``
red-team levels             streams ``[REDTEAM_LEVEL_STREAM,     the levels ``goodhart redteam --seed s`` generates
                            s, ...]`` (25)                       and edits (seed sequences: no integer seed above
                                                                 draws them; the curriculum's stream is 24)
demos, recordings, figures  ``d + e``                            episode ``e`` of a demo from its seed ``d``: the
                                                                 registry's (``agents/pretrained/demos.yaml``, found
                                                                 by ``scripts/pick_demo_seeds.py`` searching from
                                                                 ``SHOW_LEVEL_SEED``), else ``SHOW_LEVEL_SEED`` (0)
==========================  ===================================  =================================================

``SOURCE_SEED_STRIDE`` keeps the sources of one pool apart as
long as each plays fewer than 10,000 copies.
"""

EVAL_LEVEL_SEED = 10**6
HELD_OUT_LEVEL_SEED = 2_000_000
RLHF_STATE_LEVEL_SEED = 4_000_000
RLHF_SEGMENT_LEVEL_SEED = 2_500_000
BEST_OF_N_LEVEL_SEED = 2_600_000
DEMONSTRATION_LEVEL_SEED = 3_000_000
SOURCE_SEED_STRIDE = 10_000
SHOW_LEVEL_SEED = 0
REDTEAM_LEVEL_STREAM = 25

__all__ = [
    "BEST_OF_N_LEVEL_SEED",
    "DEMONSTRATION_LEVEL_SEED",
    "EVAL_LEVEL_SEED",
    "HELD_OUT_LEVEL_SEED",
    "REDTEAM_LEVEL_STREAM",
    "RLHF_SEGMENT_LEVEL_SEED",
    "RLHF_STATE_LEVEL_SEED",
    "SHOW_LEVEL_SEED",
    "SOURCE_SEED_STRIDE",
]
