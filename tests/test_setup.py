"""What a new user meets first: the version, the licence, the thin scripts' usage lines."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from typer.testing import CliRunner

import goodhart
from goodhart.cli import app

ROOT = Path(goodhart.__file__).parent


def test_version_is_the_installed_packages():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"goodhart-gridworlds {metadata.version('goodhart-gridworlds')}"
    assert goodhart.__version__ == metadata.version("goodhart-gridworlds")


def test_version_says_where_it_comes_from_when_not_installed(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    line = goodhart.version_line()
    assert "not installed" in line and "pyproject.toml" in line


def test_licence_matches_the_metadata():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Copyright (c) 2026 Goodhart Gridworlds contributors" in text
    assert 'license = "MIT"' in (ROOT / "pyproject.toml").read_text()


@pytest.mark.parametrize(
    "script,args,error",
    [
        ("train.py", ["--env", "goodhart/ColorMaze-v0", "--timesteps", "-5"], "error: --timesteps: total_timesteps"),
        ("bench.py", ["--only", "nowhere"], "error: --only nowhere: unknown section"),
    ],
)
def test_scripts_show_a_usage_that_works_when_typed(tmp_path, script, args, error):
    path = ROOT / "scripts" / script
    shown = subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True, check=True).stdout
    assert f"Usage: {script} [OPTIONS]" in shown
    typed = subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, cwd=tmp_path)
    assert typed.returncode == 2 and typed.stderr.strip() == next(line for line in typed.stderr.splitlines() if line.startswith("error:"))
    assert typed.stderr.startswith(error)


def test_every_subpackage_is_installed():
    """pyproject.toml lists the packages by hand (the repository root is the package): a new
    folder with an __init__.py must be listed, or a wheel install would lack it."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    root = Path(__file__).parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(["goodhart", *p.parent.relative_to(root).parts]) for p in root.glob("**/__init__.py")
             if not any(part.startswith(".") or part in ("tests", "build") for part in p.relative_to(root).parts)}
    assert found == listed
