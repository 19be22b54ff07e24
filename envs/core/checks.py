"""Argument checks that fail with one clear ``ValueError``: the argument, its value, what is allowed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


class ArgumentError(ValueError):
    """A bad argument; ``argument`` names it, so that a caller can say where its value came
    from (a config file, a command-line flag). ``choices``: the values allowed, where the
    argument takes one of a few (a config reader may then map a YAML scalar to one of them)."""

    def __init__(self, argument: str, message: str, choices: tuple[Any, ...] | None = None) -> None:
        super().__init__(message)
        self.argument = argument
        self.choices = choices

    def __reduce__(self) -> tuple[type, tuple[str, str, tuple[Any, ...] | None]]:  # pickles (Gymnasium's async workers send errors)
        return type(self), (self.argument, str(self), self.choices)


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """An integer in ``[low, high]`` (``high=None``: no upper bound). A whole float (``3.0``)
    is taken; NaN and infinities are refused like any other non-integer."""
    allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not math.isfinite(value))
        or int(value) != value
    ):
        raise ArgumentError(name, f"{name}={value!r} is not allowed; expected {allowed}")
    value = int(value)
    if value < low or (high is not None and value > high):
        raise ArgumentError(name, f"{name}={value!r} is out of range; expected {allowed}")
    return value


def check_float(name: str, value: Any, low: float, high: float | None = None) -> float:
    """A finite real number in ``[low, high]``."""
    allowed = f"a finite number >= {low}" if high is None else f"a number in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ArgumentError(name, f"{name}={value!r} is not allowed; expected {allowed}")
    if not (math.isfinite(value) and value >= low and (high is None or value <= high)):  # NaN, inf
        raise ArgumentError(name, f"{name}={value!r} is out of range; expected {allowed}")
    return float(value)


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """One of ``choices``."""
    if value not in choices:
        raise ArgumentError(name, f"{name}={value!r} is not allowed; expected one of {list(choices)}", tuple(choices))
    return value
