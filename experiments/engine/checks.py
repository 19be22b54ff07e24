"""Expected effects, as every kind of experiment reports them: a line saying what was
expected, what was measured and the bound it was held to, and whether it holds."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import NamedTuple


class CheckResult(NamedTuple):
    text: str
    passed: bool


def print_checks(checks: Iterable[CheckResult]) -> None:
    """Each check's PASS/FAIL line on stderr, after the command's summary."""
    for text, passed in checks:
        print(f"{'PASS' if passed else 'FAIL'}: {text}", file=sys.stderr)


def checks_section(checks: Iterable[CheckResult]) -> list[str]:
    """A report's ``## Expected effects``: each check's PASS/FAIL line (nothing without checks)."""
    lines = [f"- {'PASS' if passed else 'FAIL'}: {text}" for text, passed in checks]
    return ["## Expected effects", "", *lines, ""] if lines else []
