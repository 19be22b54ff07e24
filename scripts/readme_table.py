"""Rewrite the tables that state committed results: the README's reproductions table and
docs/trainers.md's trainer table, from docs/results/. Run it after committing a reproduction's
results (full, quick, or under another trainer); tests/test_docs.py fails while a table and
the results disagree."""

from __future__ import annotations

import os
from pathlib import Path

from goodhart.experiments.headline import reproductions_table, trainers_table
from goodhart.experiments.reproduce import folder_checks, load_reproduction, trainer_refusal
from goodhart.experiments.sweep import reproduction_names
from goodhart.experiments.trainers import TRAINERS

ROOT = Path(__file__).resolve().parents[1]
TABLES = {
    "README.md": ("<!-- reproductions-table:start -->", "<!-- reproductions-table:end -->", reproductions_table),
    "docs/trainers.md": ("<!-- trainers-table:start -->", "<!-- trainers-table:end -->", lambda folder, specs: trainers_table(folder, specs, list(TRAINERS), folder_checks, trainer_refusal)),
}


def with_table(text: str, start: str, end: str, lines: list[str]) -> str:
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    return f"{head}{start}\n" + "\n".join(lines) + f"\n{end}{tail}"


if __name__ == "__main__":
    os.chdir(ROOT)  # the tables' links and paths are relative to the repository
    specs = [(name, load_reproduction(name)[0]) for name in reproduction_names()]
    for name, (start, end, table) in TABLES.items():
        path = ROOT / name
        path.write_text(with_table(path.read_text(), start, end, table("docs/results", specs)))
