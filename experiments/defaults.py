"""Defaults shared by the pipeline and the tools, each written once.

``DISTRIBUTIONS``: the level distributions every env has, training and shifted, compared by
default. Level seeds are in :mod:`goodhart.experiments.seeds`.
"""

DISTRIBUTIONS = ("train", "shifted")

__all__ = ["DISTRIBUTIONS"]
