"""Benchmark against MiniGrid and stable-baselines3: the same as ``goodhart bench`` (see ``--help``)."""

from goodhart.cli import run_command

if __name__ == "__main__":
    run_command("bench", prog_name="bench.py")
