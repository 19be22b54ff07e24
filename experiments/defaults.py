"""Defaults shared by the pipeline and the tools, each written once.

``EVAL_LEVEL_SEED``: the first level seed of the evaluation level sets (copy ``i`` plays the
level of seed ``EVAL_LEVEL_SEED + i``), far from the training seeds (a run seeded ``s`` trains
copy ``i`` on seed ``s + i``); the evaluator, periodic evaluation during training, sweeps,
heatmaps and the shipped policies' summaries use it. ``DISTRIBUTIONS``: the level
distributions every env has, training and shifted, compared by default.
"""

EVAL_LEVEL_SEED = 10**6
DISTRIBUTIONS = ("train", "shifted")

__all__ = ["DISTRIBUTIONS", "EVAL_LEVEL_SEED"]
