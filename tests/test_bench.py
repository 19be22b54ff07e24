"""The benchmark harness runs end to end at tiny sizes and writes well-formed JSON and a table.
No timing is asserted: these machines are shared and noisy."""

from __future__ import annotations

import importlib.util
import json
import math
import sys

import pytest
from typer.testing import CliRunner

from goodhart.cli import app
from goodhart.experiments import bench

HAVE_MINIGRID = importlib.util.find_spec("minigrid") is not None


def test_quick_bench_writes_json_and_table(tmp_path):
    out = tmp_path / "bench.json"
    args = ["bench", "--quick", "--repeats", "1", "--out", str(out)]
    if not HAVE_MINIGRID:  # CI installs .[test], not .[bench]
        args.append("--skip-minigrid")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert set(record) == {"meta", "results", "ratios", "notes"}
    assert record["meta"]["partial"] is False
    for key in ("nproc", "cpu_model", "torch", "numpy", "command", "loadavg_start"):
        assert key in record["meta"]
    ids = {row["id"] for row in record["results"]}
    for name in ("ColorMaze", "LoopRace"):
        for n in (1, 64, 1024):
            assert f"env/{name}/vecenv/{n}" in ids and f"env/{name}/core/{n}" in ids
        assert f"env/{name}/gym_vector/64" in ids and f"env/{name}/gym_sync/64" in ids
    assert {"ppo/colormaze", "ppo/colormaze_rgb", "ppo/colormaze_rgb2"} <= ids
    assert ("env/minigrid/single" in ids) == HAVE_MINIGRID
    assert ("ppo/minigrid_cnn" in ids) == HAVE_MINIGRID
    for row in record["results"]:
        assert row["min"] <= row["median"] <= row["max"] and row["median"] > 0
        assert len(row["values"]) == 1
    ppo = next(row for row in record["results"] if row["id"] == "ppo/colormaze")
    assert ppo["peak_rss_mib"] > 0
    assert math.isclose(sum(ppo["breakdown_share"].values()), 1.0, rel_tol=1e-6)
    assert all(math.isfinite(r["value"]) and r["value"] > 0 for r in record["ratios"])
    if HAVE_MINIGRID:
        labels = {r["label"] for r in record["ratios"]}
        assert "ColorMaze PPO / MiniGrid PPO with the same CNN and settings" in labels
    else:
        assert any("skipped" in note for note in record["notes"])
    # the table: every figure's label and the breakdown
    for row in record["results"]:
        assert row["label"] in result.output
    assert "Where a PPO iteration's time goes" in result.output
    assert "| figure" in result.output


def test_missing_minigrid_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "minigrid", None)  # import minigrid -> ImportError
    with pytest.raises(bench.BenchError, match=r"\[bench\].*--skip-minigrid"):
        bench.require_minigrid()
    result = CliRunner().invoke(app, ["bench", "--quick", "--only", "env"])
    assert result.exit_code == 2
    assert "bench" in result.output and "--skip-minigrid" in result.output


def test_sections_are_checked():
    assert bench.parse_sections(None) == ["env", "ppo"]
    assert bench.parse_sections(["time_to_result,env"]) == ["env", "time_to_result"]
    with pytest.raises(bench.BenchError, match="valid ones"):
        bench.parse_sections(["envs"])
