"""The ``goodhart`` command: one entry point, a subcommand per job."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    help="Goodhart Gridworlds: gridworlds where the reward and the true objective come apart.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def goodhart() -> None:
    """Train agents, evaluate them on shifted levels, and watch them game their rewards."""


def fail(message: str) -> None:
    """Exit non-zero with one clear line."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command()
def train(
    env: Annotated[Optional[str], typer.Option(help="Registered env id, e.g. goodhart/ColorMaze-v0. Its shipped config in experiments/configs/ is used when no --config is given.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="YAML run config (see experiments/configs/). Default: the env's shipped config.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a config key, e.g. --set ppo.learning_rate=3e-4 --set env_kwargs.size=4 (repeatable; values are YAML).")] = None,
    timesteps: Annotated[Optional[int], typer.Option(help="Total environment steps (overrides total_timesteps).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of the run: levels, network initialisation and sampling (overrides seed).")] = None,
    n_envs: Annotated[Optional[int], typer.Option(help="Parallel env copies in the batched VecEnv (overrides n_envs).")] = None,
    out: Annotated[Path, typer.Option(help="Root folder of runs; the run goes to OUT/NAME/seedSEED/.")] = Path("runs"),
    name: Annotated[Optional[str], typer.Option(help="Run name. Default: the config file's name without .yaml.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in its folder from its latest checkpoint.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar with steps/s and ETA.")] = True,
) -> None:
    """Train PPO on an environment; everything the run produces goes to its run folder."""
    from goodhart.experiments.config import ConfigError, resolve
    from goodhart.experiments.train import run_dir
    from goodhart.experiments.train import train as run_training

    flags = {"total_timesteps": timesteps, "seed": seed, "n_envs": n_envs}
    try:
        cfg, source = resolve(env, config, set_ or [], flags)
        folder = run_dir(out, name or source.stem, cfg.seed)
        model = run_training(cfg, folder, resume=resume, progress_bar=progress)
    except ConfigError as err:
        fail(str(err))
    typer.echo(f"model: {model}.safetensors")


def main() -> None:
    app(prog_name="goodhart")


if __name__ == "__main__":
    sys.exit(main())
