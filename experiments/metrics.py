"""Summaries of episode outcomes, shared by training logs and the evaluator."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def summarize(outcomes: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Mean of each outcome metric over episodes. Flags become rates; ``steps_to_*`` counts
    are averaged over the episodes that reached the thing (-1 marks "never"), NaN if none did."""
    summary: dict[str, float] = {}
    for key in outcomes[0]:
        values = np.asarray([float(o[key]) for o in outcomes])
        if key.startswith("steps_to_"):
            values = values[values >= 0]
        summary[key] = float(values.mean()) if len(values) else math.nan
    return summary
