"""The documentation site's generated pages: every registered env and every reproduction has one.

These call the page generator (``docs/_ext/goodhart_pages.py``) without Sphinx, which the
default test install does not have; the strict build itself
(``python -m sphinx -W --keep-going -n -b html docs docs/_build/html``) runs in CI.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

import goodhart_pages as pages


@pytest.fixture(scope="module")
def env_pages() -> list[pages.EnvPage]:
    return pages.env_pages()


@pytest.fixture(scope="module")
def reproduction_pages() -> list[pages.ReproductionPage]:
    return pages.reproduction_pages()


def test_every_registered_env_has_a_page(env_pages: list[pages.EnvPage]) -> None:
    import gymnasium as gym

    registered = {env_id for env_id in gym.registry if env_id.startswith("goodhart/")}
    assert registered, "no goodhart/ env is registered"
    assert {p.env_id for p in env_pages} == registered
    assert len({p.path for p in env_pages}) == len(env_pages), "two envs share a page"


def test_env_pages_have_their_sections_picture_and_demo(env_pages: list[pages.EnvPage]) -> None:
    for page in env_pages:
        missing = [name for name, text in page.required.items() if not text.strip()]
        assert not missing, f"{page.env_id}: its docstring has no (or an empty) {missing} section"
        assert page.knobs, f"{page.env_id}: no knobs found in the constructor's signature"
        assert page.picture.is_file(), f"{page.env_id}: no picture {page.picture} (python scripts/render_envs.py)"
        assert page.demo_gifs, f"{page.env_id}: no demo plays it in agents/pretrained/demos.yaml"
        for gif in page.demo_gifs:
            assert gif.is_file(), f"{page.env_id}: no demo GIF {gif} (goodhart record NAME --out {gif.name})"
        assert page.text.startswith("# ")


def test_every_reproduction_has_a_page(reproduction_pages: list[pages.ReproductionPage]) -> None:
    specs = sorted(path.stem for path in (DOCS.parent / "experiments" / "reproductions").glob("*.yaml"))
    assert specs
    assert [p.name for p in reproduction_pages] == specs
    for page in reproduction_pages:
        assert f"goodhart reproduce {page.name}" in page.text
        assert page.envs, f"{page.name}: trains on no registered env"
        assert all(env.startswith("goodhart/") for env in page.envs)


def test_env_pages_list_the_reproductions_that_use_them(env_pages: list[pages.EnvPage], reproduction_pages: list[pages.ReproductionPage]) -> None:
    by_env = {p.env_id: set(p.reproductions) for p in env_pages}
    for page in reproduction_pages:
        for env_id in page.envs:
            assert page.name in by_env[env_id]
            assert f"/reproductions/{page.name}" in next(p.text for p in env_pages if p.env_id == env_id)


@pytest.mark.parametrize("name", sorted(path.stem for path in (DOCS.parent / "experiments" / "reproductions").glob("*.yaml")))
def test_every_reproduction_has_committed_results(name: str) -> None:
    """Fails for a reproduction whose result is not committed yet (its page says so)."""
    found = pages.results_of(name)
    assert "report" in found, f"no committed report: docs/results/{name}/report.md"
    assert "results" in found, f"no committed results: docs/results/{name}/results.json"


def test_committed_reports_are_embedded_with_their_pictures(reproduction_pages: list[pages.ReproductionPage]) -> None:
    for page in reproduction_pages:
        if "report" not in page.results:
            assert "No committed result exists yet" in page.text
            continue
        for picture in (DOCS / "results" / page.name).glob("*.png"):
            if f"]({picture.name})" in page.results["report"].read_text(encoding="utf-8"):
                assert f"](../results/{page.name}/{picture.name})" in page.text


def test_cli_page_has_every_command() -> None:
    import typer
    from goodhart.cli import app

    text = pages.cli_page()
    command = typer.main.get_command(app)
    for name, sub in command.commands.items():
        assert f"## `goodhart {name}`" in text
        for child in getattr(sub, "commands", {}):
            assert f"`goodhart {name} {child}`" in text
        for param in sub.params:
            for opt in param.opts:
                if opt.startswith("--"):
                    assert opt in text, f"goodhart {name}: {opt} missing"


def test_docstring_lists_become_lists() -> None:
    lines = ["Text:", "- ``a``: one", "  more", "- ``b``: two", "After."]
    assert pages.separate_lists(lines) == ["Text:", "", "- ``a``: one", "  more", "- ``b``: two", "", "After."]
    # a line that starts with "* " inside a code span is not an item
    assert pages.separate_lists(["``x - y", "* z``"]) == ["``x - y", "* z``"]


def test_stray_stars_are_escaped() -> None:
    lines = ["(B, *obs_shape) and ``*x``", "", "an *emph* word"]
    assert pages.stray_stars(lines) == ["(B, \\*obs_shape) and ``*x``", "", "an *emph* word"]


README = DOCS.parent / "README.md"


def test_the_readme_is_the_front_door() -> None:
    """At most 250 lines; the rest lives in the site."""
    assert len(README.read_text().splitlines()) <= 250


def test_the_readme_table_states_the_committed_results(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every number in the README's reproductions table is read off a committed results file:
    the headline from ``docs/results/NAME/results.json``, the quick-mode time from
    ``docs/results/NAME-quick/results.json`` (``python scripts/readme_table.py`` rewrites it)."""
    from goodhart.experiments.headline import reproductions_table
    from goodhart.experiments.reproduce import load_reproduction
    from goodhart.experiments.sweep import reproduction_names

    monkeypatch.chdir(DOCS.parent)
    text = README.read_text()
    block = text.split("<!-- reproductions-table:start -->\n", 1)[1].split("\n<!-- reproductions-table:end -->", 1)[0]
    expected = reproductions_table("docs/results", [(name, load_reproduction(name)[0]) for name in reproduction_names()])
    assert block.splitlines() == expected


def test_the_trainer_table_states_the_committed_results(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/trainers.md's table: every reproduction's headline under each trainer, read off
    ``docs/results/NAME[-TRAINER]/results.json`` (``python scripts/readme_table.py`` rewrites it)."""
    from goodhart.experiments.headline import trainers_table
    from goodhart.experiments.reproduce import folder_checks, load_reproduction, trainer_refusal
    from goodhart.experiments.sweep import reproduction_names
    from goodhart.experiments.trainers import TRAINERS

    monkeypatch.chdir(DOCS.parent)
    text = (DOCS / "trainers.md").read_text()
    block = text.split("<!-- trainers-table:start -->\n", 1)[1].split("\n<!-- trainers-table:end -->", 1)[0]
    expected = trainers_table("docs/results", [(name, load_reproduction(name)[0]) for name in reproduction_names()], list(TRAINERS), folder_checks, trainer_refusal)
    assert block.splitlines() == expected
    assert "cannot run: does not train with curriculum" in text  # maze-regret under example: no results, and a reason
