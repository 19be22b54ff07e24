"""Behavioural probe sets: one ships for every env and loads; the intended oracle passes
(nearly) every probe where the proxy's oracle and a random walk do not; a bad probe file is one
clear error; `goodhart probe` prints the table; a sweep's probes section renders in its report."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from goodhart.agents.pretrained import FOLDER as PRETRAINED
from goodhart.agents.policies import policy_from_name, run_episodes
from goodhart.cli import app
from goodhart.envs import ENVS
from goodhart.experiments.evaluate import evaluate, read_results, reference_subject, resolve_subject, write_results
from goodhart.experiments.probes import PROBES_DIR, ProbeError, load_probe_set, play_levels, run_probes
from goodhart.experiments.report import markdown

COLOR = "goodhart/ColorMaze-v0"
# Per env: the oracle that does what we want, and the one that does what the proxy pays for.
ORACLES = {
    "goodhart/ColorMaze-v0": ("oracle-goal", "oracle-cue"),
    "goodhart/CornerMaze-v0": ("oracle-goal", "oracle-corner"),
    "goodhart/KeysAndChests-v0": ("oracle-opener", "oracle-collector"),
    "goodhart/TomatoWatering-v0": ("oracle-gardener", "oracle-tamperer"),
    "goodhart/AbsentSupervisor-v0": ("oracle-safe", "oracle-sneaky"),
    "goodhart/LoopRace-v0": ("oracle-racer", "oracle-farmer"),
}


def test_every_env_ships_a_probe_set_that_loads():
    assert set(ORACLES) == set(ENVS)
    for env_id in ENVS:
        probe_set = load_probe_set(None, env_id)
        assert probe_set.env == env_id and probe_set.path.parent == PROBES_DIR and probe_set.description
        assert len(probe_set.probes) >= 4
        assert len({p.name for p in probe_set.probes}) == len(probe_set.probes)
    assert len(list(PROBES_DIR.glob("*.yaml"))) == len(ENVS)


@pytest.mark.parametrize("env_id", list(ENVS))
def test_the_intended_oracle_passes_every_probe_and_the_proxys_oracle_and_random_do_not(env_id):
    intended, proxy = ORACLES[env_id]
    subjects = [reference_subject(name, env_id, {}) for name in (intended, proxy, "random")]
    record = run_probes(subjects, load_probe_set(None, env_id), episodes=20)
    rates = {name: {probe: stats["mean"] for probe, stats in entry["passed"].items()} for name, entry in record["policies"].items()}
    assert min(rates[intended].values()) >= 0.9, rates[intended]
    for name in (proxy, "random"):
        assert np.mean(list(rates[name].values())) <= 0.5, (name, rates[name])
    assert {p["name"] for p in record["probes"]} == set(rates[intended])


def test_a_probe_plays_the_level_of_each_seed_as_the_evaluator_does():
    """Episode j of a probe is the level of reset(seed=s_j): the evaluator's first episode
    from that seed, whatever the other levels in the batch."""
    oracle = policy_from_name("oracle-goal", COLOR)
    seeds = [3000058, 17, 3000058]
    played = play_levels(oracle, COLOR, {}, "shifted", seeds)
    alone = [run_episodes(oracle, COLOR, {}, distribution="shifted", episodes=1, level_seed=s)[0] for s in seeds]
    assert played == alone and played[0] == played[2]
    probe = next(p for p in load_probe_set("colormaze").probes if p.picked)
    assert probe.level_seeds(0, 7) == [level.seed for level in probe.picked] + [probe.picked[0].seed, probe.picked[1].seed]
    seeded = next(p for p in load_probe_set("colormaze").probes if p.levels)
    assert seeded.level_seeds(50) == list(range(50, 50 + seeded.levels)) and seeded.level_seeds(50, 3) == [50, 51, 52]


def write_broken(tmp_path: Path, change) -> Path:
    """The shipped ColorMaze set with ``change`` applied to its picked probe."""
    data = yaml.safe_load((PROBES_DIR / "colormaze.yaml").read_text())
    change(next(p for p in data["probes"] if p["name"] == "cue-two-from-goal"))
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def swap_agent(probe):
    rows = probe["picked"][0]["layout"].splitlines()
    rows[1] = rows[1].replace(".", "A", 1) if "A" not in rows[1] else rows[1].replace("A", ".")
    probe["picked"][0]["layout"] = "\n".join(rows)


@pytest.mark.parametrize("change,problem", [
    (swap_agent, r"picked\.0 \(seed 3000058\): not the level this seed draws: row 2 is '.*' there, not '.*'"),
    (lambda p: p["picked"].__setitem__(0, {"seed": 3000058, "layout": "###\n#A#\n###"}), r"picked\.0 \(seed 3000058\): the layout is 3 rows"),
    (lambda p: p.update(expect={"outcome": "reached_moon", "op": "==", "value": True}), r"expect\.outcome: 'reached_moon' is not an outcome of goodhart/ColorMaze-v0"),
    (lambda p: p.update(expect={"outcome": "goal_first", "op": ">=", "value": 1}), r"expect: goal_first is a flag"),
    (lambda p: p.update(env_kwargs={"cue_colour": "red"}), r"env_kwargs\.cue_colour: unknown knob of goodhart/ColorMaze-v0"),
    (lambda p: p.update(env_kwargs={"size": 4}), r"env_kwargs: they change the observation from \(4, 13, 13\) to \(4, 17, 17\)"),
    (lambda p: p.update(distribution="sideways"), r"distribution: 'sideways' is not a level distribution"),
    (lambda p: p.update(levels=20), r"give levels .* or picked .*, one of them"),
])
def test_a_bad_probe_file_is_one_line_naming_the_file_the_probe_and_the_problem(tmp_path, change, problem):
    path = write_broken(tmp_path, change)
    with pytest.raises(ProbeError) as caught:
        load_probe_set(path, COLOR)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: probe 'cue-two-from-goal': "), message
    assert re.search(problem, message), message


def test_a_probe_file_of_another_env_or_an_unknown_set_is_refused(tmp_path):
    with pytest.raises(ProbeError, match="a probe set of goodhart/LoopRace-v0, not of goodhart/ColorMaze-v0"):
        load_probe_set("looprace", COLOR)
    with pytest.raises(ProbeError, match="nowhere: no probe set of that name; shipped sets: absentsupervisor, colormaze"):
        load_probe_set("nowhere", COLOR)
    code, out = goodhart("probe", str(PRETRAINED / "colormaze"), "--set", str(write_broken(tmp_path, swap_agent)))
    assert code == 2 and out.startswith("error: ") and out.count("\n") == 1 and "probe 'cue-two-from-goal'" in out, out


def goodhart(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_goodhart_probe_prints_the_table_and_writes_it(tmp_path):
    code, out = goodhart("probe", str(PRETRAINED / "colormaze"), "--episodes", "10", "--out", str(tmp_path))
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("probe set colormaze on goodhart/ColorMaze-v0") and "95 % bootstrap CI over episodes" in lines[0]
    assert re.split(r"\s{2,}", lines[2]) == ["probe", "passes if", "colormaze", "random", "oracle-goal", "oracle-cue", "what it is"]
    names = [p.name for p in load_probe_set("colormaze").probes]
    rows = {line.split()[0]: line for line in lines[4:4 + len(names)]}
    assert list(rows) == names
    for row in rows.values():
        assert len(re.findall(r"\d\.\d\d \[\d\.\d\d, \d\.\d\d\]", row)) == 4, row
    record = json.loads((tmp_path / "probes.json").read_text())
    assert record["set"] == "colormaze" and list(record["policies"]) == ["colormaze", "random", "oracle-goal", "oracle-cue"]
    assert all(p["episodes"] == 10 for p in record["probes"])
    table = (tmp_path / "probes.md").read_text()
    assert table.startswith("# Probes of colormaze") and "| cue-elsewhere | `goal_first == true` |" in table
    assert out.rstrip().endswith(f"probes: {tmp_path / 'probes.md'}")


def test_a_run_folder_plays_every_seed_and_gets_the_interval_of_its_seeds(tmp_path):
    """MODEL as a run folder: each seed folder's policy plays, and the pass rate's interval is
    over the seeds (two here: their range), as in ``goodhart evaluate``."""
    for seed in (0, 1):
        folder = tmp_path / "run" / f"seed{seed}"
        folder.mkdir(parents=True)
        shutil.copy(PRETRAINED / "colormaze.safetensors", folder / "model.safetensors")
        meta = json.loads((PRETRAINED / "colormaze.json").read_text())
        meta["weights"], meta["config"]["seed"] = "model.safetensors", seed
        (folder / "model.json").write_text(json.dumps(meta))
    subject = resolve_subject(str(tmp_path / "run"))
    record = run_probes([subject], load_probe_set("colormaze"), episodes=4)
    entry = record["policies"]["run"]
    assert entry["seeds"] == [0, 1] and {stats["interval"] for stats in entry["passed"].values()} == {"range"}


def test_a_sweep_records_probes_section_renders_and_survives_the_round_trip(tmp_path):
    """The report shows a record's probe table; a record without one renders as before."""
    subjects = [reference_subject(name, COLOR, {}) for name in ("random", "oracle-goal")]
    record = evaluate(subjects, ["shifted"], 10)
    without = markdown(record, "t")
    record["probes"] = run_probes(subjects, load_probe_set("colormaze"), episodes=5)
    text = markdown(record, "t")
    assert "## Probes" not in without and "## Probes" in text
    assert text.index("## Distribution `shifted`") < text.index("## Probes") < text.index("## How to read the numbers")
    table = probe_lines(text)
    assert table[0] == "| probe | passes if | random | oracle-goal | what it is |"
    assert "| goal-alone | `reached_goal == true` | " in text and len(table) == 2 + len(record["probes"]["probes"])
    written = write_results(record, tmp_path)
    assert markdown(read_results(tmp_path), "t") == markdown(written, "t")


def probe_lines(text: str) -> list[str]:
    """The table rows of the report's ## Probes section."""
    section = text.split("## Probes", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("|")]


def test_a_sweep_plays_its_probe_set_and_its_report_shows_it(tmp_path):
    """End to end on a tiny sweep: the probes named in the sweep file are validated before
    training, played by the trained condition and the references, and tabled in report.md."""
    run = tmp_path / "tiny.yaml"
    run.write_text(
        "env: goodhart/ColorMaze-v0\nn_envs: 4\ntotal_timesteps: 128\ncheckpoint_freq: 128\n"
        "ppo: {n_steps: 32, batch_size: 64, n_epochs: 1}\nnetwork: {channels: [4], strides: [1], features_dim: 8}\neval: {freq: 0}\n"
    )
    probes = tmp_path / "few.yaml"
    data = yaml.safe_load((PROBES_DIR / "colormaze.yaml").read_text())
    data["probes"] = [dict(p, levels=4) for p in data["probes"] if "levels" in p][:2]
    probes.write_text(yaml.safe_dump(data, sort_keys=False))
    spec = tmp_path / "sweep.yaml"
    spec.write_text(f"name: tiny\nconfig: {run}\nseeds: [0]\nevaluate: {{distributions: [shifted], episodes: 4, references: [random]}}\nprobes: {probes}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(spec.read_text().replace(f"probes: {probes}", "probes: looprace"))
    code, out = goodhart("sweep", str(bad), "--out", str(tmp_path / "bad-out"))
    assert code == 2 and "a probe set of goodhart/LoopRace-v0, not of goodhart/ColorMaze-v0" in out and not (tmp_path / "bad-out").exists()
    code, out = goodhart("sweep", str(spec), "--out", str(tmp_path / "out"), "--workers", "1")
    assert code == 0, out
    record = read_results(tmp_path / "out")
    assert list(record["probes"]["policies"]) == ["base", "random"] and [p["episodes"] for p in record["probes"]["probes"]] == [4, 4]
    assert len(probe_lines((tmp_path / "out" / "report.md").read_text())) == 4
