"""The harness's child processes: ``python -m goodhart.experiments.bench --child SPEC RESULT``
runs one PPO measurement (see :func:`~goodhart.experiments.bench.ppo_speed.child_main`)."""

import sys

from goodhart.experiments.bench.ppo_speed import child_main

if len(sys.argv) == 4 and sys.argv[1] == "--child":
    sys.exit(child_main(sys.argv[2:]))
sys.exit("usage: goodhart bench --help (this module's own entry point is for the harness's child processes)")
