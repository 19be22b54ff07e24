"""Experiments: configs, training runs, evaluation, reports and sweeps."""
