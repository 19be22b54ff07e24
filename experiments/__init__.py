"""Experiments: the research pipeline (configs, training runs, evaluation, metrics, reports,
sweeps and reproductions, in this package's modules), the teaching tools
(:mod:`goodhart.experiments.teaching`: demos, recording, play, heatmaps, vector fields) and the
benchmark harness (:mod:`goodhart.experiments.bench`). None of them names an env: what they
know of one comes from its declared channels, outcomes, oracles and presentation hooks."""
