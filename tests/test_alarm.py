"""The divergence alarm: its tests on scripted streams, the training callback against the
offline replay, what it does when it fires, and the study that measures it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from goodhart.cli import app
from goodhart.experiments.alarm import DIVERGING, RISING_AND_FALLING, DivergenceAlarm, correlation_below, line_sums, replay, slope_p
from goodhart.experiments.alarm_study import load_alarm_spec, run_alarm_study
from goodhart.experiments.config import AlarmConfig, ConfigError
from goodhart.experiments.curves import episode_rows, training_curves
from goodhart.experiments.reproduce import load_reproduction, rerender

TINY = ["--set", "n_envs=4", "--set", "ppo.n_steps=64", "--set", "ppo.batch_size=128", "--set", "ppo.n_epochs=2", "--set", "eval.freq=0"]


def stream(true_of, proxy_of, steps=400_000, every=200, seed=0):
    """Episodes ending every ``every`` steps, with unit noise on both returns."""
    rng = np.random.default_rng(seed)
    for step in range(every, steps + 1, every):
        x = step / steps
        yield step, proxy_of(x) + rng.normal(), true_of(x) + 0.3 * rng.normal()


def run_alarm(episodes, **config):
    alarm = DivergenceAlarm(AlarmConfig(**config), seed=0)
    for step, proxy, true in episodes:
        alarm.observe(step, proxy, true)
        fired = alarm.check(step)
        if fired is not None:
            return fired
    return None


def test_the_slope_and_correlation_tests():
    x = np.arange(20.0)
    assert slope_p(*line_sums(x, 2 * x), +1) == 0.0 and slope_p(*line_sums(x, 2 * x), -1) == 1.0
    assert slope_p(*line_sums(x, np.ones(20)), -1) == 1.0  # constant: nothing to tell
    noisy = np.random.default_rng(0).normal(size=20)
    assert 0.05 < slope_p(*line_sums(x, noisy), +1) < 0.95
    r, p = correlation_below(*line_sums(x, -x + 0.1 * noisy), 0.0)
    assert r < -0.9 and p < 1e-6
    assert correlation_below(*line_sums(x, x), 0.0)[1] > 0.99


def test_it_fires_after_the_true_return_turns_while_the_proxy_climbs():
    def hump(x):
        return 3 * x / 0.3 if x < 0.3 else max(0.0, 3 - 3 * (x - 0.3) / 0.2)

    for share in (1.0, 0.2):
        fired = run_alarm(stream(hump, lambda x: 100 * x), audit_share=share)
        assert fired is not None and fired.reason in (RISING_AND_FALLING, DIVERGING)
        assert 0.3 * 400_000 < fired.step < 0.6 * 400_000, fired
        assert fired.best_step <= 0.45 * 400_000


@pytest.mark.parametrize("noise", [0.0, 1.0])
def test_it_never_fires_while_proxy_and_true_rise_together(noise):
    for seed in range(5):
        episodes = stream(lambda x: 3 * min(x / 0.5, 1.0), lambda x: 30 * min(x / 0.5, 1.0), seed=seed)
        assert run_alarm(episodes, audit_share=1.0, audit_noise=noise) is None


def test_a_true_return_that_stops_improving_under_a_rising_proxy_rarely_fires():
    """Measured, as the docstring of goodhart.experiments.alarm states it: 40 runs with a flat
    true return (it has stopped improving) and a rising proxy, a fifth of episodes audited."""
    fired = sum(run_alarm(stream(lambda x: 1.0, lambda x: 50 * x, seed=s), audit_share=0.2) is not None for s in range(40))
    assert fired <= 4


def test_same_seed_same_audit_other_seed_other_audit():
    def audited(seed):
        alarm = DivergenceAlarm(AlarmConfig(audit_share=0.3), seed)
        for step, proxy, true in stream(lambda x: 1.0, lambda x: x, steps=20_000):
            alarm.observe(step, proxy, true)
        return alarm.true.x

    assert audited(1) == audited(1) and audited(1) != audited(2)


def noisy_alarm(action: str) -> list[str]:
    """An alarm that fires within a few thousand steps on the maze, where proxy and true are
    the same number: the audit reads the true return with large noise, and the alarm asks for
    a correlation near 1."""
    settings = {"audit_share": 1.0, "audit_noise": 5.0, "min_correlation": 0.99, "alpha": 0.2, "patience": 0, "min_audited": 4, "on_alarm": action}
    return [arg for key, value in settings.items() for arg in ("--set", f"alarm.{key}={value}")]


def train(tmp_path: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["train", "--env", "goodhart/ColorMaze-v0", "--timesteps", "8192", "--out", str(tmp_path),
                                      "--no-progress", *TINY, *extra])
    return result.exit_code, result.output


def test_the_callback_fires_where_the_replay_does_and_stops_training(tmp_path):
    code, out = train(tmp_path, *noisy_alarm("stop"))
    assert code == 0, out
    run = tmp_path / "colormaze" / "seed0"
    record = json.loads((run / "alarm.json").read_text())
    assert record["action"] == "stop" and record["step"] < 8192
    again = replay(episode_rows(run), AlarmConfig(**record["config"]), 0, "return")
    assert again is not None and again.step == record["step"]
    meta = json.loads((run / "model.json").read_text())
    assert meta["config"]["alarm"]["on_alarm"] == "stop"
    steps = max(int(r["timestep"]) for r in episode_rows(run))
    assert steps < 8192  # it stopped
    events = list(run.glob("tb_1/events.out.tfevents.*"))
    assert events and b"alarm" in events[0].read_bytes()
    code, out = CliRunner().invoke(app, ["train", "--config", str(run / "config.yaml"), "--out", str(tmp_path), "--name", "colormaze",
                                         "--resume", "--no-progress"]).exit_code, ""
    assert code == 0
    assert max(int(r["timestep"]) for r in episode_rows(run)) == steps  # resuming does not train past the alarm
    curves = training_curves([run], "return")
    assert curves["alarms"] == [record["step"]]


def test_rollback_keeps_the_policy_from_before_the_fall(tmp_path):
    code, out = train(tmp_path, *noisy_alarm("rollback"))
    assert code == 0, out
    record = json.loads((tmp_path / "colormaze" / "seed0" / "alarm.json").read_text())
    assert record["action"] == "rollback"
    assert record["rolled_back_to"] is None or record["rolled_back_to"] <= record["step"]


def test_an_alarm_setting_out_of_range_is_one_clear_error(tmp_path):
    code, out = train(tmp_path, "--set", "alarm.audit_share=1.5")
    assert code != 0 and "audit_share" in out and "Traceback" not in out


def test_the_study_replays_the_alarm_over_a_reproductions_runs(tmp_path):
    code, out = train(tmp_path / "runs", *noisy_alarm("log"))
    assert code == 0, out
    source = tmp_path / "maze-misgeneralization-quick"
    (source / "runs" / "ppo").mkdir(parents=True)
    (source / "runs" / "ppo" / "seed0").symlink_to(tmp_path / "runs" / "colormaze" / "seed0")
    (source / "results.json").write_text(json.dumps({"sweep": {"name": "maze-misgeneralization", "quick": True}}))
    data = yaml.safe_load(Path(load_reproduction("divergence-alarm")[1]).read_text())
    data["sources"] = [{"reproduction": "maze-misgeneralization", "conditions": {"ppo": "coincides"}}]
    data["quick"] = {}
    data["checks"] = [c for c in data["checks"] if c["policy"].startswith("maze")]
    data.pop("headline")
    spec_file = tmp_path / "study.yaml"
    spec_file.write_text(yaml.safe_dump(data))
    spec = load_alarm_spec(spec_file)
    report, failed, checks = run_alarm_study(spec, tmp_path / "divergence-alarm-quick", quick=True)
    assert not failed and report.is_file()
    record = json.loads((tmp_path / "divergence-alarm-quick" / "results.json").read_text())
    entry = record["policies"]["maze-misgeneralization: ppo"]
    assert set(entry["metrics"]) == {"audit 1%", "audit 5%", "audit 100%", "curve"} and entry["trainer"] == "shipped"
    assert entry["metrics"]["audit 100%"]["fired"]["mean"] == 0.0  # the study uses its own settings, not the run's noisy ones
    assert all(passed for _, passed in checks)
    text = report.read_text()
    rerender(tmp_path / "divergence-alarm-quick", spec)
    assert report.read_text() == text


def test_a_bad_study_spec_is_one_clear_error(tmp_path):
    data = yaml.safe_load(Path(load_reproduction("divergence-alarm")[1]).read_text())
    data["audit_shares"] = [0.0]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="audit_share"):
        load_alarm_spec(bad)
    data["audit_shares"], data["quick"] = [0.05], {"sources": ["no-such"]}
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="quick.sources"):
        load_alarm_spec(bad)
