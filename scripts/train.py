"""Train PPO on an environment: the same as ``goodhart train`` (see ``--help``)."""

from goodhart.cli import run_command

if __name__ == "__main__":
    run_command("train", prog_name="train.py")
