"""Benchmark against MiniGrid and stable-baselines3: the same as ``goodhart bench`` (see ``--help``)."""

import sys

from goodhart.cli import app

if __name__ == "__main__":
    app(["bench", *sys.argv[1:]], prog_name="bench.py")
