"""Train PPO on an environment: the same as ``goodhart train`` (see ``--help``)."""

import sys

from goodhart.cli import app

if __name__ == "__main__":
    app(["train", *sys.argv[1:]], prog_name="train.py")
