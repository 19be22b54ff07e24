"""The tutorial notebooks: committed without outputs, in step with their builder, and (slow)
runnable top to bottom.

The classroom notebook (``docs/tutorials/classroom.ipynb``) is written by
``docs/tutorials/make_classroom.py``; edit the builder and re-run it rather than editing the
notebook. Running it trains two small agents: minutes, hence ``slow``
(``pytest -m slow tests/test_notebooks.py``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "docs" / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
CLASSROOM = TUTORIALS / "classroom.ipynb"


def _builder():
    spec = importlib.util.spec_from_file_location("make_classroom", TUTORIALS / "make_classroom.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_is_a_classroom_notebook() -> None:
    assert CLASSROOM in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert notebook["nbformat"] == 4
    assert notebook["cells"], f"{path.name} has no cells"
    for k, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        assert cell["outputs"] == [], f"{path.name}: cell {k} has outputs (strip them: re-run its builder)"
        assert cell["execution_count"] is None, f"{path.name}: cell {k} has an execution count"
        assert "execution" not in cell.get("metadata", {}), f"{path.name}: cell {k} has execution timings"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_valid_nbformat(path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.get("kernelspec", {}).get("name") == "python3"


def test_classroom_notebook_is_what_its_builder_writes() -> None:
    pytest.importorskip("nbformat")
    built = _builder().build()
    committed = json.loads(CLASSROOM.read_text(encoding="utf-8"))
    assert [(c.cell_type, c.source) for c in built.cells] == [
        (c["cell_type"], "".join(c["source"])) for c in committed["cells"]
    ], "classroom.ipynb differs from make_classroom.py: run python docs/tutorials/make_classroom.py"


def test_classroom_notebook_installs_nothing() -> None:
    """Its set-up tells how to install in Colab, as commented commands in Markdown; no
    executed cell reaches the network."""
    notebook = json.loads(CLASSROOM.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            assert "pip install" not in source and "git clone" not in source and not source.lstrip().startswith("!")
    markdown = "".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown")
    assert "# !pip install torch --index-url https://download.pytorch.org/whl/cpu" in markdown
    assert 'goodhart-gridworlds @ git+' in markdown


@pytest.mark.slow
def test_classroom_notebook_runs_top_to_bottom() -> None:
    """Executes the notebook in a fresh kernel (the ``python3`` kernel of the Python running
    the tests); every cell must finish without an error. About 4-7 minutes on 2 CPU cores."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.read(CLASSROOM, as_version=4)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    started = time.time()
    client = nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(TUTORIALS)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    elapsed = time.time() - started
    printed = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "notebook ran in" in printed
    assert "maze: trained" in printed and "maze-10pct-decoupled: trained" in printed
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {}) or "image/gif" in o.get("data", {})]
    assert len(images) >= 7, f"expected the GIFs and plots, got {len(images)} images"
    print(f"classroom.ipynb ran in {elapsed:.0f} s")
