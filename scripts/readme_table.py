"""Rewrite the README's reproductions table from the committed results (docs/results/): run it
after committing a reproduction's full or quick results; tests/test_docs.py fails while the
table and the results disagree."""

from __future__ import annotations

import os
from pathlib import Path

from goodhart.experiments.headline import reproductions_table
from goodhart.experiments.reproduce import load_reproduction
from goodhart.experiments.sweep import reproduction_names

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- reproductions-table:start -->", "<!-- reproductions-table:end -->"


def table() -> str:
    specs = [(name, load_reproduction(name)[0]) for name in reproduction_names()]
    return "\n".join(reproductions_table("docs/results", specs))


def with_table(readme: str) -> str:
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{table()}\n{END}{tail}"


if __name__ == "__main__":
    os.chdir(ROOT)  # the table's links and paths are relative to the repository
    (ROOT / "README.md").write_text(with_table((ROOT / "README.md").read_text()))
