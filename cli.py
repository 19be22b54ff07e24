"""The ``goodhart`` command: one entry point, a subcommand per job."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from goodhart.envs import ENVS
from goodhart.experiments.defaults import DISTRIBUTIONS
from goodhart.experiments.seeds import EVAL_LEVEL_SEED, HELD_OUT_LEVEL_SEED

# Named in --help without importing the experiments (which import torch): the sweep files.
REPRODUCTIONS = sorted(path.stem for path in (Path(__file__).parent / "experiments" / "reproductions").glob("*.yaml"))
PROBE_SETS = sorted(path.stem for path in (Path(__file__).parent / "envs" / "probes").glob("*.yaml"))

# Help is click's plain layout (rich_markup_mode=None): it wraps every option's text under its
# name at any terminal width, where typer's rich tables cut words with "…" at 80 columns and
# give flags a <bool> metavar. Each command has a one-line short_help for the command lists.
HELP = {"rich_markup_mode": None, "context_settings": {"max_content_width": 120}}

app = typer.Typer(
    help="Goodhart Gridworlds: gridworlds where the reward and the true objective come apart.",
    **HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(asked: bool) -> None:
    if asked:
        from goodhart import version_line

        typer.echo(version_line())
        raise typer.Exit()


@app.callback()
def goodhart(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the installed version and exit.")] = False,
) -> None:
    """Train agents, evaluate them on shifted levels, and watch them game their rewards."""


def fail(message: str) -> None:
    """Exit non-zero with one clear line."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def whole_number(text: str | int) -> int:
    """An integer option's value, also written as 1e5 or 100_000 (a number with no fraction)."""
    if isinstance(text, int):
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if not number.is_integer():
        raise typer.BadParameter(f"{text!r} is not a whole number (write e.g. 100000, 1e5 or 100_000)")
    return int(number)


WHOLE = {"parser": whole_number}


@app.command(short_help="Train PPO on an env; the run goes to its run folder.")
def train(
    env: Annotated[Optional[str], typer.Option(help=f"Registered env id: {', '.join(ENVS)}. Its shipped config in agents/configs/ is used when no --config is given.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="YAML run config (see agents/configs/). Default: the env's shipped config.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", metavar="KEY=VALUE", help="Override a config key, e.g. --set ppo.learning_rate=3e-4 --set env_kwargs.size=4 (repeatable; values are YAML).")] = None,
    timesteps: Annotated[Optional[int], typer.Option(**WHOLE, help="Total environment steps (overrides total_timesteps), e.g. 200000 or 2e5. With --resume, a larger value extends the run.")] = None,
    seed: Annotated[Optional[int], typer.Option(**WHOLE, help="Seed of the run: levels, network initialisation and sampling (overrides seed).")] = None,
    n_envs: Annotated[Optional[int], typer.Option(**WHOLE, help="Parallel env copies in the batched VecEnv (overrides n_envs).")] = None,
    out: Annotated[Path, typer.Option(help="Root folder of runs; the run goes to OUT/NAME/seedSEED/.")] = Path("runs"),
    name: Annotated[Optional[str], typer.Option(help="Run name. Default: the config file's name without .yaml.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in its folder from its newest readable checkpoint; refused if the folder holds no run. The options must be the run's, except a larger --timesteps, which extends it (recorded in its config.yaml).")] = False,
    resume_or_start: Annotated[bool, typer.Option("--resume-or-start", help="As --resume, but start the run if its folder holds none.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar with steps/s and ETA.")] = True,
    reward_model: Annotated[Optional[Path], typer.Option(help="Train against this learned reward model (a file stem from `goodhart rlhf fit`) instead of the env's reward; sets reward_model.path. The env's reward and the true objective stay in the logs; reward_model.csv gets KL to the initial policy and the learned, env and true returns.", show_default="the config's reward_model section, if any")] = None,
    kl_coef: Annotated[Optional[float], typer.Option(min=0.0, help="With a reward model: penalty kl_coef * (log pi - log pi_init) on every reward, towards the initial policy (sets reward_model.kl_coef).", show_default="0: none")] = None,
) -> None:
    """Train PPO on an environment; everything the run produces goes to its run folder."""
    from goodhart.experiments.config import ConfigError, resolve
    from goodhart.experiments.train import run_dir
    from goodhart.experiments.train import train as run_training

    flags = {"total_timesteps": ("--timesteps", timesteps), "seed": ("--seed", seed), "n_envs": ("--n-envs", n_envs)}
    overrides = list(set_ or [])
    if reward_model is not None:
        overrides.append(f"reward_model.path={reward_model}")
    if kl_coef is not None:
        overrides.append(f"reward_model.kl_coef={kl_coef}")
    try:
        cfg, source = resolve(env, config, overrides, flags)
        if kl_coef is not None and cfg.reward_model is None:
            raise ConfigError("--kl-coef needs a reward model (--reward-model PATH or a reward_model section)")
        folder = run_dir(out, name or source.stem, cfg.seed)
        model = run_training(cfg, folder, resume=resume or resume_or_start, start_if_missing=resume_or_start, progress_bar=progress)
    except ConfigError as err:
        fail(str(err))
    typer.echo(f"model: {model}.safetensors")


def _csv_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


SteerOpt = Annotated[Optional[list[Path]], typer.Option("--steer", metavar="VECTOR", help="A steering vector from `goodhart steer` (its stem, .safetensors or .json; repeatable): the policy it was computed from is played again beside itself, with the vector times --coef added to its activations.", show_default="none")]
CoefOpt = Annotated[float, typer.Option(help="With --steer: the coefficient of the vector (negative: subtracted; -1 turns the activations at the vector's levels' start into their contrast's).")]


def _vectors(paths: Optional[list[Path]]) -> list:
    """The steering vectors of --steer, or one error line naming the file."""
    from goodhart.agents.steering import SteeringError, load_vector

    try:
        return [load_vector(path) for path in paths or ()]
    except SteeringError as err:
        fail(f"--steer {err}")


LevelsOpt = Annotated[Optional[list[Path]], typer.Option("--levels", metavar="DIR", help="A saved level set (a folder with levels.npz and levels.json, as `goodhart redteam` writes in its levels/), played level by level in order; repeatable.", show_default="none")]


def _level_sets(folders: Optional[list[Path]], env_id: str) -> dict:
    """The level sets of --levels by name (``levels:FOLDER``), each of ``env_id``; one error line otherwise."""
    from goodhart.envs.core.level_sets import load_level_set

    sets = {}
    for folder in folders or ():
        level_set = load_level_set(folder)
        if level_set.env_id != env_id:
            raise ValueError(f"--levels {folder}: a level set of {level_set.env_id}, not of {env_id}")
        if level_set.name in sets:
            raise ValueError(f"--levels {folder}: two level sets named {level_set.name}; give their folders different names")
        sets[level_set.name] = level_set
    return sets


@app.command(short_help="Evaluate policies on fixed, seeded level sets.")
def evaluate(
    policies: Annotated[list[str], typer.Argument(metavar="POLICY", help="Run folders (every seed*/ in them), seed folders, model files, or reference policies: random, oracle-<name> for each of the env's oracles (" + "; ".join(f"{env_id}: {', '.join(core.ORACLES)}" for env_id, core in ENVS.items()) + ").", show_default=False)],
    env: Annotated[Optional[str], typer.Option(help="Env id; needed only when every policy is a reference policy. Default: the trained policies' env.")] = None,
    distributions: Annotated[str, typer.Option(help="Comma-separated level distributions to evaluate on.")] = ",".join(DISTRIBUTIONS),
    episodes: Annotated[int, typer.Option(min=1, help="Episodes per policy, seed and distribution (a fixed level set).")] = 200,
    level_seed: Annotated[int, typer.Option(min=0, help="Seed of the level sets: the same for every policy.")] = EVAL_LEVEL_SEED,
    deterministic: Annotated[bool, typer.Option("--deterministic", help="Take each policy's most likely action instead of sampling.")] = False,
    out: Annotated[Path, typer.Option(help="Folder for results.json, results.csv, report.md and the plots.")] = Path("eval"),
    steer: SteerOpt = None,
    coef: CoefOpt = -1.0,
    levels: LevelsOpt = None,
) -> None:
    """Evaluate policies on fixed, seeded level sets: capability, preference, true and proxy
    return per distribution, with 95 % CIs over training seeds. With --levels, also on saved
    level sets (`goodhart redteam` writes them), each as a distribution named levels:FOLDER;
    --distributions '' evaluates on those alone."""
    from goodhart.agents.model_io import ModelFileError
    from goodhart.experiments.evaluate import EvaluationError, resolve_subjects, write_results
    from goodhart.experiments.evaluate import evaluate as run_evaluation
    from goodhart.experiments.report import summary, write_report

    vectors = _vectors(steer)
    try:
        subjects = resolve_subjects(policies, env, deterministic)
        if vectors:
            from goodhart.experiments.steering import steered_subjects

            subjects = steered_subjects(subjects, vectors, coef)
        level_sets = _level_sets(levels, subjects[0].env_id)
        if not level_sets and not _csv_list(distributions):
            raise EvaluationError("--distributions '' leaves nothing to evaluate on; give --levels DIR or a distribution")
        record = run_evaluation(subjects, _csv_list(distributions), episodes, level_seed,
                                level_sets={name: level_set.levels for name, level_set in level_sets.items()})
    except (EvaluationError, ModelFileError, ValueError) as err:
        fail(str(err))
    record = write_results(record, out)
    report = write_report(record, out, f"Evaluation on {record['env']}")
    typer.echo(summary(record))
    typer.echo(f"report: {report}")


@app.command(short_help="Probe a policy on levels that each ask one question.")
def probe(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="A run folder (every seed*/ in it: intervals over seeds), a seed folder or a model file.", show_default=False)],
    set_: Annotated[Optional[str], typer.Option("--set", metavar="NAME_OR_FILE", help=f"The probe set: a shipped one ({', '.join(PROBE_SETS)}: envs/probes/NAME.yaml) or a probe file of that format.", show_default="the set of the policy's env")] = None,
    episodes: Annotated[Optional[int], typer.Option(min=1, help="Episodes per probe and seed, cycling over each probe's levels.", show_default="each probe's own")] = None,
    level_seed: Annotated[int, typer.Option(min=0, help="First level seed of the probes of seeded levels (picked levels keep their own).")] = EVAL_LEVEL_SEED,
    deterministic: Annotated[bool, typer.Option("--deterministic", help="Take the policy's most likely action instead of sampling.")] = False,
    out: Annotated[Optional[Path], typer.Option(help="Also write probes.json and probes.md (the table) to this folder.", show_default="print only")] = None,
) -> None:
    """Play a trained policy and the env's reference policies (random, the oracles) on a probe
    set: levels that each isolate one situation, with the behaviour a policy that learned the
    true goal would show there. Prints each policy's pass rate per probe with a 95 % interval."""
    from goodhart.agents.model_io import ModelFileError
    from goodhart.agents.policies import reference_names
    from goodhart.experiments.evaluate import EvaluationError, Subject, reference_subject, resolve_subject
    from goodhart.experiments.probes import ProbeError, load_probe_set, run_probes
    from goodhart.experiments.report import probe_summary, write_probe_report

    _one_thread()
    try:
        subject = resolve_subject(model, deterministic)
        if not isinstance(subject, Subject):
            fail(f"{model}: MODEL must be a trained policy (a run folder, a seed folder or a model file); the reference policies play beside it anyway")
        probe_set = load_probe_set(set_, subject.env_id)
        references = [reference_subject(name, subject.env_id, subject.env_kwargs) for name in reference_names(subject.env_id)]
        section = run_probes([subject, *references], probe_set, episodes, level_seed)
    except (EvaluationError, ModelFileError, ProbeError) as err:
        fail(str(err))
    typer.echo(probe_summary(section))
    if out is not None:
        typer.echo(f"probes: {write_probe_report(section, out)}")


@app.command(short_help="Find levels where a policy fails; save them as a level set.")
def redteam(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="A trained policy: a seed folder or a model file (one seed).", show_default=False)],
    out: Annotated[Path, typer.Option(help="Folder for levels/ (the level set), redteam.json and redteam.md.", show_default=False)],
    set_: Annotated[Optional[list[str]], typer.Option("--set", metavar="env_kwargs.KEY=VALUE", help="Override one of the model's env knobs, e.g. --set env_kwargs.cue_size=1 (repeatable; values are YAML). Knobs that change the observation's shape do not fit the model.")] = None,
    distribution: Annotated[str, typer.Option(help="Level distribution the new levels are drawn from.")] = "train",
    budget: Annotated[int, typer.Option(**WHOLE, help="Levels generated and scored.")] = 2000,
    score: Annotated[str, typer.Option(help="Regret estimator: oracle (the level's exact optimal discounted true return minus the policy's mean; needs an env that computes optimal returns, such as the mazes) or maxmc (the best of the policy's episodes minus their mean).")] = "oracle",
    episodes: Annotated[int, typer.Option(min=1, help="Episodes per level, sampling from the policy.")] = 4,
    edit_rounds: Annotated[int, typer.Option(min=0, help="Rounds of ACCEL-style edits: each of the --keep worst levels so far gives --children levels of --num-edits random edits each, scored and added to the pool (0: no edits).")] = 2,
    children: Annotated[int, typer.Option(min=1, help="Edited levels per level, per round.")] = 4,
    num_edits: Annotated[int, typer.Option(min=1, help="Random edits that make one edited level (as the curriculum's num_edits).")] = 3,
    keep: Annotated[int, typer.Option(min=1, help="Size of the level set written: the levels of highest score.")] = 32,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the levels, the edits and the policy's sampling.")] = 0,
    gamma: Annotated[Optional[float], typer.Option(min=0.0, max=1.0, help="Discount of the returns.", show_default="the model's ppo.gamma")] = None,
) -> None:
    """Search generated and edited levels for those where a trained policy's true return
    falls furthest below the optimum (a level curriculum's hunt, turned on a finished policy),
    and write the worst ones as a level set that `goodhart evaluate --levels` and `goodhart
    record --levels` play again. redteam.md compares the levels found with random levels and
    with randomly edited ones: how many are distinguishing (the proxy apart from the intended
    target), the regret, and the policy's capability, preference and headline outcomes.

    \b
    Example (then watch the first 4 levels found):
      goodhart redteam runs/NAME/seed0 --budget 2000 --out rt
      goodhart record --model runs/NAME/seed0 --levels rt/levels \\
          --episodes 4 --out found.gif
    """
    from goodhart.agents.model_io import ModelFileError
    from goodhart.envs.core.level_sets import LevelSetError
    from goodhart.experiments.config import ConfigError, apply_override
    from goodhart.experiments.redteam import RedTeamError, RedTeamSpec, run_redteam

    overrides: dict = {}
    try:
        for assignment in set_ or ():
            key = apply_override(overrides, assignment)
            if not key.startswith("env_kwargs.") or key.count(".") != 1:
                raise ConfigError(f"--set {assignment!r}: only env knobs can be set here, as env_kwargs.KEY=VALUE")
        spec = RedTeamSpec(model, overrides.get("env_kwargs", {}), distribution, budget, score, episodes, edit_rounds,
                           children, num_edits, keep, seed, gamma)
        result = run_redteam(spec, out)
    except (RedTeamError, ConfigError, ModelFileError, LevelSetError) as err:
        fail(str(err))
    for line in result.summary():
        typer.echo(line)
    typer.echo(f"level set: {result.level_set}")
    typer.echo(f"report: {result.report}")


def _contrasts_help() -> str:
    return "; ".join(f"{env_id}: {', '.join(core.CONTRASTS)}" for env_id, core in ENVS.items() if core.CONTRASTS)


@app.command(short_help="Compute a steering vector; evaluate the policy steered by it.")
def steer(
    model: Annotated[Path, typer.Argument(metavar="MODEL", help="The policy to steer: a seed folder or a policy file (one policy: a vector steers the network it was computed from).", show_default=False)],
    out: Annotated[Path, typer.Option(help="File stem of the vector: writes OUT.safetensors and OUT.json (then pass --steer OUT to evaluate, demo, record or plot vfield).", show_default=False)],
    contrast: Annotated[Optional[str], typer.Option(help=f"The counterfactual level the vector contrasts each level with, one of the env's contrasts ({_contrasts_help()}).", show_default="the env's first")] = None,
    layer: Annotated[Optional[str], typer.Option(help="The layer whose activations are steered, e.g. features_extractor.cnn.3 (a wrong name lists the policy's layers).", show_default="the last convolution's activation")] = None,
    distribution: Annotated[str, typer.Option(help="Level distribution of the levels the vector is computed on and evaluated on.")] = "shifted",
    levels: Annotated[int, typer.Option(min=1, help="Levels the vector is the mean over (1: that level's own vector, as Turner et al. computed one per maze).")] = 100,
    level_seed: Annotated[int, typer.Option(min=0, help="Level seed of the first of them.")] = EVAL_LEVEL_SEED,
    coef: Annotated[float, typer.Option(help="The coefficient the vector is added with in the evaluation (negative: subtracted).")] = -1.0,
    eval_levels: Annotated[int, typer.Option(min=0, help="Levels with a decision square to evaluate on, one episode each, unsteered beside steered (0: no evaluation).")] = 200,
    eval_level_seed: Annotated[int, typer.Option(min=0, help="Level seed from which the evaluation's levels are looked for.")] = HELD_OUT_LEVEL_SEED,
) -> None:
    """Compute a steering vector, the mean over levels of one layer's activations at each
    level's start minus those on its contrast (the same level without the cue...), save it,
    and compare the policy unsteered, steered by it and steered by each level's own vector: the
    probability of its step towards the proxy and the intended target at the decision square,
    and its outcomes."""
    from goodhart.agents.model_io import ModelFileError, find_policy, load_policy
    from goodhart.agents.steering import compute_vector, default_layer, save_vector
    from goodhart.envs import core_class
    from goodhart.experiments.steering import compare_steering

    _one_thread()
    try:
        loaded = load_policy(find_policy(model))
        contrasts = list(core_class(loaded.env_id).CONTRASTS)
        if not contrasts:
            fail(f"{loaded.env_id} declares no contrasts (a counterfactual level to compare with), so no steering vector can be computed on it")
        vector = compute_vector(loaded, layer=layer or default_layer(loaded.policy), contrast=contrast or contrasts[0], distribution=distribution,
                                level_seeds=range(level_seed, level_seed + levels), model=str(model))
        stem = save_vector(vector, out)
        typer.echo(f"vector: {stem}.safetensors ({vector.describe()})")
        if eval_levels:
            typer.echo(compare_steering(loaded, vector, coef, eval_levels, eval_level_seed))
    except (ModelFileError, ValueError) as err:
        fail(str(err))


@app.command(short_help="Reproduce a headline result: train, evaluate, report.")
def reproduce(
    name: Annotated[str, typer.Argument(metavar="NAME", help="One of the sweeps in experiments/reproductions/:\n\n\b\n" + "\n".join(REPRODUCTIONS), show_default=False)],
    quick: Annotated[bool, typer.Option("--quick", help="Fewer seeds and steps: minutes on a 2-core CPU, the effect still shown.")] = False,
    seeds: Annotated[Optional[int], typer.Option(min=1, help="Training seeds per condition. Default: the reproduction's (>= 5; fewer with --quick).")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Runs trained at once, one process each. Default: the number of cores.")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Try again the runs that failed every attempt in an earlier invocation (interrupted runs resume without it).")] = False,
    trainer: Annotated[Optional[str], typer.Option(help="Who trains every run: shipped (the configs' tuned PPO settings), example (the single-file CleanRL-style PPO, generic settings) or zoo (SB3's PPO with RL Zoo's hyperparameters); see docs/trainers.md.", show_default="shipped")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Folder of the reproduction. Default: results/NAME (NAME-quick with --quick; -TRAINER added with --trainer).")] = None,
) -> None:
    """Train, evaluate and report one of the headline results. Re-running skips finished runs
    and resumes interrupted ones (Ctrl-C stops it without failing a run)."""
    from goodhart.experiments.config import ConfigError
    from goodhart.experiments.engine import default_workers
    from goodhart.experiments.reproduce import load_reproduction, run_reproduction, with_trainer
    from goodhart.experiments.results import folder_name
    from goodhart.experiments.trainers import TRAINERS

    if trainer is not None and trainer not in TRAINERS:
        fail(f"--trainer {trainer!r} is not a trainer; valid ones: {', '.join(TRAINERS)}")
    folder = out or Path("results") / folder_name(name, quick, trainer)
    with _experiment_errors():
        try:
            spec, path = load_reproduction(name)
            if trainer is not None:
                spec = with_trainer(spec, trainer)
            report, failed, checks = run_reproduction(spec, folder, quick=quick, seeds=list(range(seeds)) if seeds else None,
                                                      workers=workers or default_workers(), retry_failed=retry_failed, source=str(path))
        except ConfigError as err:
            fail(str(err))
    typer.echo(f"report: {report}")
    if failed or not all(ok for _, ok in checks):
        raise typer.Exit(1)


@app.command(short_help="Write a results folder's report again from results.json.")
def report(
    folder: Annotated[Path, typer.Argument(metavar="FOLDER", help="A results folder with its results.json (results/NAME, docs/results/NAME, a sweep's folder).", show_default=False)],
    spec: Annotated[Optional[str], typer.Option(help="The reproduction (a name, or a spec file) to read the description, headline and missing checks from. Default: the one named in results.json.")] = None,
    title: Annotated[Optional[str], typer.Option(help="The report's title. Default: the experiment's name.")] = None,
    description: Annotated[Optional[str], typer.Option(help="The text under the title. Default: the spec's description.")] = None,
) -> None:
    """Write a results folder's report.md and figures again from its results.json, without
    training or evaluating anything (the checks stored there, or measured again on it)."""
    from goodhart.experiments.config import ConfigError
    from goodhart.experiments.reproduce import load_spec_named, rerender

    if not (folder / "results.json").is_file():
        fail(f"{folder}: no results.json there")
    try:
        written = rerender(folder, load_spec_named(spec) if spec else None, title=title, about=description)
    except ConfigError as err:
        fail(str(err))
    typer.echo(f"report: {written}")


@contextmanager
def _experiment_errors():
    """An interrupted experiment prints one line saying how to resume it (exit 130); one whose
    stage cannot go on, one line saying why (exit 1)."""
    from goodhart.experiments.engine import Interrupted, JobsFailed

    try:
        yield
    except (Interrupted, KeyboardInterrupt) as err:
        reason = str(err) or "interrupted"
        typer.echo(f"interrupted ({reason}); run the same command again to resume", err=True)
        raise typer.Exit(130) from None
    except JobsFailed as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None


@app.command(short_help="Train and evaluate every condition x seed of a sweep.")
def sweep(
    config: Annotated[Path, typer.Argument(metavar="CONFIG", help="A sweep YAML (with config:, grid:, seeds:, evaluate:; see experiments/reproductions/) or a run config to sweep with --grid.", show_default=False)],
    grid: Annotated[Optional[list[str]], typer.Option(metavar="KEY=V1,V2,...", help="A knob and its values, e.g. --grid env_kwargs.cue_on_goal_prob=1.0,0.9 (repeatable; values are YAML; adds to or replaces the YAML's grid).")] = None,
    seeds: Annotated[Optional[str], typer.Option(help="Training seeds: a range 0-4 or a list 0,3,7. Default: the sweep's (a run config: its seed).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", metavar="KEY=VALUE", help="Override a config key in every run, e.g. --set ppo.n_epochs=2 --set eval.freq=0 (repeatable; values are YAML; over the sweep's own set:).")] = None,
    timesteps: Annotated[Optional[int], typer.Option(**WHOLE, help="Total environment steps of every run (overrides total_timesteps), e.g. 50000 or 5e4. Raised on a finished sweep, it extends its runs.")] = None,
    backend: Annotated[str, typer.Option(help="local: a process per run on this machine; ray: Ray tasks (pip install -e '.[ray]').")] = "local",
    address: Annotated[Optional[str], typer.Option(help="Ray cluster address (from `ray start --head`); default: a local Ray instance.")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Runs trained at once. Default: the number of cores.")] = None,
    max_attempts: Annotated[int, typer.Option(min=1, help="Tries per run before it is reported failed (an interrupted try does not count).")] = 2,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Try again the runs that failed every attempt in an earlier invocation (interrupted runs resume without it).")] = False,
    out: Annotated[Optional[Path], typer.Option(help="Sweep folder (manifest, runs, results). Default: sweeps/NAME.")] = None,
) -> None:
    """Train and evaluate every condition x seed of a sweep, in parallel, resumably; aggregate
    the results with the evaluator. Exits non-zero if a run failed."""
    from goodhart.experiments.config import ConfigError
    from goodhart.experiments.engine import default_workers
    from goodhart.experiments.reproduce import run_sweep
    from goodhart.experiments.sweep import sweep_from_file

    if backend not in ("local", "ray"):
        fail(f"--backend {backend!r} is not allowed; expected local or ray")
    with _experiment_errors():
        try:
            spec, seed_list, origins = sweep_from_file(config, grid or [], seeds, set_ or [], timesteps)
            folder = out or Path("sweeps") / spec.name
            report, failed, _ = run_sweep(spec, folder, seeds=seed_list, workers=workers or default_workers(), backend=backend, address=address,
                                          max_attempts=max_attempts, retry_failed=retry_failed, source=str(config), origins=origins)
        except ConfigError as err:
            fail(str(err))
    typer.echo(f"report: {report}")
    if failed:
        typer.echo(f"error: {len(failed)} run(s) failed: {', '.join(failed)} (see {folder / 'manifest.json'})", err=True)
        raise typer.Exit(1)


# ------------------------------------------------------------------------ RLHF
rlhf_app = typer.Typer(help="Learned rewards from simulated human preferences: clone a starting policy from demonstrations, collect rated segment pairs, fit a reward model (then: goodhart train --reward-model --set init=...).",
                       short_help="Learned rewards: clone, collect preferences, fit.", **HELP, no_args_is_help=True)
app.add_typer(rlhf_app, name="rlhf")


def _rater_options(values: Optional[list[str]]) -> dict:
    import yaml

    options = {}
    for entry in values or []:
        key, sep, raw = entry.partition("=")
        if not sep or not key.strip():
            fail(f"--rater {entry!r}: expected option=value, e.g. --rater salience_bias=0.03")
        options[key.strip()] = yaml.safe_load(raw)
    return options


@rlhf_app.command("clone", short_help="Behaviour-clone a starting policy from demonstrations.")
def rlhf_clone(
    out: Annotated[Path, typer.Option(help="File stem of the policy: writes OUT.safetensors and OUT.json (start a run from it with --set init=OUT).", show_default=False)],
    env: Annotated[Optional[str], typer.Option(help="Registered env id; its shipped config is used unless --config is given.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Run config whose env, env_kwargs and network the policy gets (those of the run that will start from it).")] = None,
    source: Annotated[Optional[list[str]], typer.Option("--source", metavar="POLICY[@EPS]", help="A demonstrator: oracle-<name>, random, or a policy file or seed folder, with @EPS for a share of random actions (e.g. oracle-racer@0.6: an imperfect racer). Repeatable; episodes are split equally among them.", show_default=False)] = None,
    episodes: Annotated[int, typer.Option(min=1, help="Demonstrated episodes.")] = 200,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the demonstrated steps.")] = 5,
    learning_rate: Annotated[float, typer.Option(min=0.0, help="Adam's learning rate.")] = 1e-3,
    val_fraction: Annotated[float, typer.Option(min=0.0, max=0.9, help="Share of the episodes held out to measure the fit.")] = 0.1,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the network's initialisation, the demonstrations' levels and sampling, and the batch order.")] = 0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar with the held-out negative log-likelihood.")] = True,
) -> None:
    """Behaviour cloning, the SFT step of RLHF: fit a run's policy network to demonstrations
    by maximum likelihood of their actions; prints the held-out negative log-likelihood and the
    share of steps whose most likely action is the demonstrated one."""
    from tqdm import tqdm

    from goodhart.experiments.reward_learning.cloning import CloneConfig
    from goodhart.agents.model_io import ModelFileError
    from goodhart.experiments.config import ConfigError, resolve
    from goodhart.experiments.reward_learning.sources import check_sources, clone_demonstrations

    if not source:
        fail("give at least one --source demonstrator, e.g. --source oracle-racer@0.6")
    try:
        cfg, _ = resolve(env, config, [f"seed={seed}"], {})
        fit = CloneConfig(epochs=epochs, learning_rate=learning_rate, val_fraction=val_fraction, seed=seed)
        fit.held_out(episodes)  # every argument checked before the progress bar is drawn
        check_sources(source, cfg.env)
        with tqdm(total=epochs, desc="clone", unit="epoch", disable=not progress, dynamic_ncols=True) as bar:
            def report(done: int, total: int, stats: dict) -> None:
                bar.update(done - bar.n)
                bar.set_postfix(nll=f"{stats['nll']:.3f}")

            record = clone_demonstrations(cfg.model_copy(update={"reward_model": None, "init": None}), source, episodes, fit, out, report)
    except (ConfigError, ModelFileError, ValueError) as err:
        fail(str(err))
    held = f"held out: NLL {record['held_out_nll']:.3f}, agreement {record['held_out_agreement']:.3f}" if "held_out_nll" in record else "nothing held out"
    typer.echo(f"policy: {out}.safetensors (cloned from {record['steps']} steps of {', '.join(source)}; train NLL {record['train_nll']:.3f}; {held})")


@rlhf_app.command("collect", short_help="Collect segment pairs labelled by a simulated rater.")
def rlhf_collect(
    out: Annotated[Path, typer.Option(help="File stem of the dataset: writes OUT.npz (arrays) and OUT.json (what made it).", show_default=False)],
    env: Annotated[Optional[str], typer.Option(help="Registered env id; its shipped config's env knobs are used unless --config is given.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Run config whose env and env_kwargs to use (the segments must look like the observations of the policy you will train).")] = None,
    source: Annotated[Optional[list[str]], typer.Option("--source", metavar="POLICY[@EPS]", help="A policy that plays segments: random, oracle-<name>, or a policy file or seed folder, with @EPS for a share of random actions (e.g. oracle-racer@0.3). Repeatable; segments are split equally among the sources.", show_default="random and every oracle of the env at @0.1 and @0.3")] = None,
    labels: Annotated[int, typer.Option(min=1, help="Pairs the rater labels.")] = 1000,
    segments: Annotated[Optional[int], typer.Option(min=2, help="Segments in the pool the pairs are drawn from.", show_default="2 x labels: every pair fresh")] = None,
    length: Annotated[int, typer.Option(min=1, help="Steps per segment (an episode's last segment may be shorter).")] = 20,
    rater: Annotated[Optional[list[str]], typer.Option("--rater", metavar="OPTION=VALUE", help="A rater option (repeatable): temperature=T (Boltzmann; 0: exact), noise=P (share of coin-flip answers), salience_bias=B (value per unit of the env's salient event, e.g. a target hit in the race), oversight_region=NAME (sees only that part of the grid), oversight_fraction=F (sees only the first share of each segment).", show_default="an exact rater: no noise, no bias, full oversight")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the levels, the sources' sampling, the pairs and the rater.")] = 0,
) -> None:
    """Collect segments from a mix of policies and have a simulated rater label pairs of them."""
    from goodhart.agents.model_io import ModelFileError
    from goodhart.experiments.reward_learning.dataset import save_dataset
    from goodhart.experiments.reward_learning.raters import RaterConfig, rare_distortions
    from goodhart.experiments.config import ConfigError, resolve
    from goodhart.experiments.reward_learning.sources import collect_preferences, default_sources

    try:
        rater_config = RaterConfig.from_dict(_rater_options(rater))
        cfg, _ = resolve(env, config, [], {})
        kwargs = dict(cfg.env_kwargs)
        dataset = collect_preferences(cfg.env, kwargs, source or default_sources(cfg.env), labels=labels, rater=rater_config, length=length, segments=segments, seed=seed)
    except (ConfigError, ModelFileError, ValueError) as err:
        fail(str(err))
    stem = save_dataset(dataset, out)
    decided = dataset.labels[dataset.labels != 0.5]
    typer.echo(f"dataset: {stem}.npz ({len(dataset)} labels of {len(dataset.segments)} segments of {cfg.env}; first preferred in {decided.mean():.2f} of {len(decided)} decided pairs)")
    shares = dataset.info["distortion_shares"]
    if shares:
        typer.echo("segments each rater distortion can act on: " + ", ".join(f"{name} {share:.3f}" for name, share in shares.items()))
    for line in rare_distortions(shares):
        typer.echo(line, err=True)


@rlhf_app.command("fit", short_help="Fit a reward model on a preference dataset.")
def rlhf_fit(
    dataset: Annotated[Path, typer.Argument(metavar="DATASET", help="A preference dataset (stem, .npz or .json) from `goodhart rlhf collect`.", show_default=False)],
    out: Annotated[Path, typer.Option(help="File stem of the reward model: writes OUT.safetensors and OUT.json.", show_default=False)],
    labels: Annotated[Optional[int], typer.Option(min=1, help="Use only the first N labels of the dataset.", show_default="all")] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the training pairs; each net keeps its epoch of lowest held-out loss.")] = 15,  # FitConfig.epochs (a test keeps them equal)
    ensemble: Annotated[int, typer.Option(min=1, help="Nets in the ensemble; training combines them by reward_model.objective (mean, worst, uncertainty, single); their spread is the disagreement.")] = 1,
    bootstrap: Annotated[bool, typer.Option(help="Fit each member on its own resample (with replacement) of the training pairs, so members differ in data, not only in seed.")] = False,
    crop: Annotated[Optional[int], typer.Option(min=0, help="Read only the (2k+1)x(2k+1) cells at the centre of the observation (around the agent in an agent-centred view).", show_default="the whole observation")] = None,
    channels: Annotated[str, typer.Option(help="Convolution channels of the grid CNN, comma-separated.")] = "16,32",
    strides: Annotated[str, typer.Option(help="Their strides, comma-separated.")] = "1,2",
    features_dim: Annotated[int, typer.Option(min=1, help="Width of the CNN's linear layer.")] = 64,
    learning_rate: Annotated[float, typer.Option(min=0.0, help="Adam's learning rate.")] = 1e-3,
    val_fraction: Annotated[float, typer.Option(min=0.0, max=0.9, help="Share of the pairs held out to measure accuracy and stop early.")] = 0.2,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the split, the initialisation and the batch order.")] = 0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar with the held-out accuracy.")] = True,
) -> None:
    """Fit a reward model on a preference dataset with the Bradley-Terry loss; prints the
    held-out pair accuracy (against the rater and against the true returns' order)."""
    from tqdm import tqdm

    from goodhart.experiments.reward_learning.dataset import DatasetFileError, load_dataset
    from goodhart.experiments.reward_learning.reward_model import FitConfig, check_fit, fit_reward_model, save_reward_model

    try:
        network = {"channels": [int(c) for c in channels.split(",")], "strides": [int(c) for c in strides.split(",")], "features_dim": features_dim, "crop": crop}
    except ValueError:
        fail(f"--channels {channels!r} / --strides {strides!r}: expected comma-separated integers, e.g. 16,32")
    try:
        data = load_dataset(dataset)
        if labels is not None:
            data = data.first(labels)
        fit_config = FitConfig(network=network, ensemble=ensemble, bootstrap=bootstrap, epochs=epochs, learning_rate=learning_rate, val_fraction=val_fraction, seed=seed)
        check_fit(data, fit_config)  # every argument checked before the progress bar is drawn
        with tqdm(total=ensemble * epochs, desc="fit", unit="epoch", disable=not progress, dynamic_ncols=True) as bar:
            def report(done: int, total: int, stats: dict) -> None:
                bar.update(done - bar.n)
                bar.set_postfix(held_out_acc=f"{stats['val_acc']:.3f}", loss=f"{stats['val_loss']:.3f}")

            model = fit_reward_model(data, fit_config, progress=report)
    except (DatasetFileError, ValueError) as err:
        fail(str(err))
    stem = save_reward_model(model, out)
    acc = model.meta["accuracy"]
    typer.echo(f"reward model: {stem}.safetensors ({len(data)} labels; pair accuracy: train {acc['train']:.3f}, held out {acc['held_out']:.3f}, held out against the true returns {acc['held_out_vs_true']:.3f})")


# --------------------------------------------------------------- teaching demos
def _names_help() -> str:
    from goodhart.experiments.teaching.players import names_help

    return names_help()


NameArg = Annotated[Optional[str], typer.Argument(help=_names_help(), show_default=False, metavar="NAME")]
ModelOpt = Annotated[Optional[list[Path]], typer.Option("--model", metavar="PATH", help="A policy to play instead of the shipped ones: a run folder (every seed), a seed folder, or a policy file (stem, .safetensors or .json); repeatable. With NAME it must be trained on NAME's env.", show_default="NAME's shipped policies")]
DistOpt = Annotated[Optional[list[str]], typer.Option("--distribution", metavar="NAME", help="Level distribution of the panels (repeatable or comma-separated); every policy plays every one.", show_default=f"the demo's (agents/pretrained/demos.yaml); else {','.join(DISTRIBUTIONS)}")]
EpisodesOpt = Annotated[int, typer.Option(min=1, help="Episodes to play; episode e is on the level of seed SEED+e.")]
FpsOpt = Annotated[int, typer.Option(min=1, help="Frames (steps) per second.")]
ScaleOpt = Annotated[float, typer.Option(min=0.1, max=8.0, help="Size of the picture: 1 draws 32-pixel cells and 20-pixel text.")]
SeedOpt = Annotated[Optional[int], typer.Option(min=0, help="Level seed of the first episode (the same level as gym.make(...).reset(seed=SEED)); also seeds the policies' sampling.", show_default="the demo's (agents/pretrained/demos.yaml: one whose first episode shows the failure); else 0")]
DeterministicOpt = Annotated[bool, typer.Option("--deterministic", help="Take each policy's most likely action instead of sampling from it.")]
MaxStepsOpt = Annotated[Optional[int], typer.Option(min=1, help="Cut episodes at this many steps (the env's max_steps).", show_default="the env's")]
HoldOpt = Annotated[float, typer.Option(min=0.0, help="Seconds to hold the last frame of each episode.")]
ShowLevelsOpt = Annotated[Optional[Path], typer.Option("--levels", metavar="DIR", help="Play a saved level set (as `goodhart redteam` writes in its levels/) instead of a distribution: episode e on its level e, in order (SEED then seeds only the policies' sampling).", show_default="none")]


def _distributions(values: Optional[list[str]]) -> Optional[list[str]]:
    if not values:
        return None
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)  # small policies, one step at a time: one thread is fastest


@app.command(short_help="Watch policies game the reward, side by side, in a window.")
def demo(
    name: NameArg = None,
    model: ModelOpt = None,
    distribution: DistOpt = None,
    episodes: EpisodesOpt = 3,
    fps: FpsOpt = 8,
    scale: ScaleOpt = 1.0,
    seed: SeedOpt = None,
    deterministic: DeterministicOpt = False,
    max_steps: MaxStepsOpt = None,
    hold: HoldOpt = 1.5,
    steer: SteerOpt = None,
    coef: CoefOpt = -1.0,
    levels: ShowLevelsOpt = None,
) -> None:
    """Watch trained policies game the reward or misgeneralize in a window, side by side; Esc
    or Q quits. Needs no training: the shipped policies play (or an env's oracles). Without a
    display, use `goodhart record`."""
    from goodhart.experiments.teaching.demo import demo as play_demo
    from goodhart.experiments.teaching.display import NoDisplay

    _one_thread()
    try:
        played = play_demo(
            name, models=model, distributions=_distributions(distribution), episodes=episodes, fps=fps,
            scale=scale, seed=seed, deterministic=deterministic, max_steps=max_steps, hold=hold, steer=_vectors(steer), coef=coef, levels=levels,
        )
    except (ValueError, NoDisplay) as err:
        fail(str(err))
    for line in played.summary():
        typer.echo(line)


@app.command(short_help="Record a demo to a GIF or MP4, headless.")
def record(
    out: Annotated[Path, typer.Option(help="File to write: .gif, or .mp4 (needs the optional extra 'video', see above). Its folder must exist.", show_default=False)],
    name: NameArg = None,
    model: ModelOpt = None,
    distribution: DistOpt = None,
    episodes: EpisodesOpt = 1,
    fps: FpsOpt = 8,
    scale: ScaleOpt = 1.0,
    seed: SeedOpt = None,
    deterministic: DeterministicOpt = False,
    max_steps: MaxStepsOpt = None,
    hold: HoldOpt = 1.5,
    steer: SteerOpt = None,
    coef: CoefOpt = -1.0,
    levels: ShowLevelsOpt = None,
) -> None:
    """Record a demo (the same frames as `goodhart demo`) to a GIF or MP4, headless. MP4
    needs the optional extra 'video':

    \b
      pip install 'goodhart-gridworlds[video]'
    """
    from goodhart.experiments.teaching.record import MissingExtra
    from goodhart.experiments.teaching.record import record as record_demo

    _one_thread()
    try:
        rec = record_demo(
            name, out, models=model, distributions=_distributions(distribution), episodes=episodes, fps=fps,
            scale=scale, seed=seed, deterministic=deterministic, max_steps=max_steps, hold=hold, steer=_vectors(steer), coef=coef, levels=levels,
        )
    except (ValueError, MissingExtra) as err:
        fail(str(err))
    typer.echo(f"{rec.path}: {rec.frames} frames, {rec.path.stat().st_size / 1024:.0f} KB")
    for line in rec.summary():
        typer.echo(line)


@app.command(short_help="Play an environment yourself, with the keyboard.")
def play(
    env_id: Annotated[str, typer.Argument(metavar="ENV_ID", help=f"A registered env id: {', '.join(ENVS)}.", show_default=False)],
    distribution: Annotated[str, typer.Option(help="Level distribution to play.")] = "train",
    seed: Annotated[int, typer.Option(min=0, help="Level seed of the first level (N moves on to SEED+1, ...).")] = 0,
    scale: ScaleOpt = 1.0,
) -> None:
    """Play an environment yourself: arrow keys move, R restarts the level, N goes to the
    next one, Esc quits. The overlay shows the proxy score, the true objective and what you
    reached. Needs a display and a keyboard."""
    from goodhart.experiments.teaching.display import NoDisplay, require_display
    from goodhart.experiments.teaching.play import play as play_env

    try:
        require_display(keyboard=True)
        outcomes = play_env(env_id, distribution=distribution, seed=seed, scale=scale)
    except (ValueError, NoDisplay) as err:
        fail(str(err))
    for k, outcome in enumerate(outcomes):
        typer.echo(f"episode {k + 1}: " + ", ".join(f"{key} {value}" for key, value in outcome.items()))


plot_app = typer.Typer(help="Pictures of what a policy does: visitation heatmaps and action vector fields.",
                       short_help="Pictures: visitation heatmaps, action vector fields.", **HELP, no_args_is_help=True)
app.add_typer(plot_app, name="plot")


@plot_app.command("heatmap", short_help="State-visitation heatmaps, training vs. shifted levels.")
def plot_heatmap(
    name: NameArg = None,
    out: Annotated[Path, typer.Option(help="PNG file to write (its folder must exist).")] = Path("heatmap.png"),
    model: ModelOpt = None,
    distribution: Annotated[Optional[list[str]], typer.Option("--distribution", metavar="NAME", help="Level distributions, one column each (and one per layout where a distribution's levels come in a few layouts; repeatable or comma-separated).", show_default=",".join(DISTRIBUTIONS))] = None,
    episodes: Annotated[int, typer.Option(min=1, help="Levels per distribution (one episode each).")] = 200,
    seed: Annotated[int, typer.Option(min=0, help="First level seed (levels SEED, SEED+1, ...; the default is the evaluation level set).")] = EVAL_LEVEL_SEED,
    level: Annotated[Optional[int], typer.Option(min=0, help="Play every episode on the level of this seed instead (the policy's sampling differs); its targets are outlined.", show_default="many levels")] = None,
    deterministic: DeterministicOpt = False,
) -> None:
    """State-visitation heatmaps of policies over many episodes, training vs. shifted levels,
    with the env's targets outlined where they are the same in every level of a panel."""
    from goodhart.experiments.teaching.heatmap import heatmap

    _one_thread()
    try:
        heatmap(name, out, models=model, distributions=_distributions(distribution), episodes=episodes, seed=seed,
                level=level, deterministic=deterministic)
    except ValueError as err:
        fail(str(err))
    typer.echo(f"heatmap: {out}")


@plot_app.command("vfield", short_help="Action probabilities as arrows on every cell of a level.")
def plot_vfield(
    name: NameArg = None,
    out: Annotated[Path, typer.Option(help="PNG file to write (its folder must exist).")] = Path("vfield.png"),
    model: ModelOpt = None,
    distribution: Annotated[str, typer.Option(help="Level distribution of the level drawn (shifted: the intended target and the proxy apart, so the paths split).")] = "shifted",
    seed: Annotated[Optional[int], typer.Option(min=0, help="Level seed of the level drawn.", show_default="a --steer vector's level if it came from one; else the first level from seed 0 where the paths to the intended target and the proxy split, else 0")] = None,
    steer: SteerOpt = None,
    coef: CoefOpt = -1.0,
) -> None:
    """Each policy's action probabilities as arrows on every free cell of one level (the agent
    placed on each cell), with the decision square outlined where the env has an intended
    target and a proxy; with --steer, each policy a vector came from beside itself steered."""
    from goodhart.experiments.teaching.vfield import vfield

    _one_thread()
    try:
        drawn = vfield(name, out, models=model, distribution=distribution, seed=seed, steer=_vectors(steer), coef=coef)
    except ValueError as err:
        fail(str(err))
    where = "none" if drawn.decision is None else f"row {drawn.decision[0]}, column {drawn.decision[1]}"
    typer.echo(f"vfield: {out} (level seed {drawn.seed}; decision square: {where})")


@app.command(short_help="Benchmark env and PPO steps/s against baselines.")
def bench(
    out: Annotated[Optional[Path], typer.Option(help="Write every figure (medians, min, max, repeats, breakdowns, machine) to this JSON file.")] = None,
    repeats: Annotated[int, typer.Option(min=1, help="Timed repeats per figure, after a warm-up; each figure is their median.")] = 5,
    quick: Annotated[bool, typer.Option("--quick", help="Tiny sizes: checks the harness in seconds; the figures mean little.")] = False,
    only: Annotated[Optional[list[str]], typer.Option(metavar="SECTION", help="Sections to run, comma-separated or repeated: env, ppo, time_to_result (minutes: only run when named).", show_default="env,ppo")] = None,
    skip_minigrid: Annotated[bool, typer.Option("--skip-minigrid", help="Leave out the MiniGrid baselines (no 'bench' extra needed).")] = False,
    reproduction: Annotated[str, typer.Option(help="The reproduction timed by the time_to_result section.")] = "maze-misgeneralization",
    reproduce_mode: Annotated[Optional[str], typer.Option(help="time_to_result: quick, full or both.", show_default="both; quick with --quick")] = None,
) -> None:
    """Benchmark env steps/s, PPO training steps/s and peak memory against MiniGrid and
    stable-baselines3 baselines measured in the same run; prints a table."""
    from functools import partial

    from goodhart.experiments.bench import BenchError, format_tables, parse_sections, run_bench, write_json

    modes = {"quick": ["quick"], "full": ["full"], "both": ["quick", "full"], None: None}
    if reproduce_mode not in modes:
        fail(f"--reproduce-mode {reproduce_mode!r} is not allowed; expected quick, full or both")
    try:
        record = run_bench(
            sections=parse_sections(only),
            repeats=repeats,
            quick=quick,
            skip_minigrid=skip_minigrid,
            reproduction=reproduction,
            reproduce_modes=modes[reproduce_mode],
            command=" ".join(["goodhart", *sys.argv[1:]]) if Path(sys.argv[0]).name == "goodhart" else None,
            progress=None if out is None else partial(write_json, out),
        )
    except BenchError as err:
        fail(str(err))
    typer.echo(format_tables(record))
    if out is not None:
        write_json(out, record)
        typer.echo(f"json: {out}")


def main() -> None:
    app(prog_name="goodhart")


def run_command(name: str, prog_name: str) -> None:
    """Run the subcommand ``name`` as a program of its own (``scripts/train.py`` is
    ``goodhart train``), so that its usage line, ``PROG_NAME [OPTIONS]``, works when typed."""
    typer.main.get_command(app).commands[name].main(args=sys.argv[1:], prog_name=prog_name)


if __name__ == "__main__":
    sys.exit(main())
