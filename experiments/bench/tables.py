"""The benchmark record as Markdown tables: figures, PPO time breakdown, ratios."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def human(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.0f} s" if value >= 10 else f"{value:.2f} s"
    for bound, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= bound:
            return f"{value / bound:.3g}{suffix}"
    return f"{value:.3g}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r) for r in rows)]


def format_tables(record: dict[str, Any]) -> str:
    """The record as Markdown tables: figures, PPO time breakdown, ratios."""
    meta = record["meta"]
    out = [
        f"Machine: {meta['nproc']} CPUs usable ({meta['cpu_model']}), Python {meta['python']}, torch {meta['torch']}, "
        f"numpy {meta['numpy']}, stable-baselines3 {meta['stable_baselines3']}, gymnasium {meta['gymnasium']}, "
        f"minigrid {meta['minigrid'] or 'not used'}; load average {meta['loadavg_start']} at start, {meta['loadavg_end']} at end.",
        f"Each figure: median of {meta['repeats']} repeats after a warm-up{' (--quick: tiny sizes, not comparable)' if meta['quick'] else ''}.",
        "",
    ]
    results = record["results"]
    if results:
        body = []
        for row in results:
            extra = f"peak RSS {row['peak_rss_mib']:.0f} MiB" if "peak_rss_mib" in row else ""
            if row.get("checks"):
                passed = sum(line.startswith("PASS") for line in row["checks"])
                extra += f"; checks {passed}/{len(row['checks'])} pass"
            body.append([row["label"], human(row["median"], row["unit"]), f"{human(row['min'], row['unit'])} - {human(row['max'], row['unit'])}", row["unit"], extra])
        out += _table(["figure", "median", "min - max", "unit", "memory"], body)
    if any(row["section"] == "env" for row in results):
        out += [
            "",
            "VecEnv: `make_vec(...).step(random actions)`, auto-reset, infos and observations included. "
            "Raw core: `venv.core.step(actions)` + `venv.core.observe()`, no resets nor infos. "
            "gymnasium.make_vec: the default (our vector entry point) against `vectorization_mode='sync'`, auto-reset and infos included. "
            "MiniGrid: `ImgObsWrapper(gym.make('MiniGrid-Empty-8x8-v0'))`, reset when done; 7 actions.",
        ]
    if any(row["section"] == "ppo" for row in results):
        out += ["", *(f"{row['label']}: {row['description']}." for row in results if row["section"] == "ppo")]
    breakdown = [row for row in results if "breakdown_share" in row]
    if breakdown:
        out += ["", "Where a PPO iteration's time goes (medians over the timed iterations):", ""]
        body = []
        for row in breakdown:
            s, share = row["breakdown_seconds"], row["breakdown_share"]
            cells = [f"{s[p]:.3f} s ({100 * share[p]:.0f} %)" for p in ("forward", "env", "other", "update")]
            body.append([row["id"].split("/", 1)[1], str(row["rollout_size"]), f"{row['iteration_seconds']['median']:.3f} s", *cells])
        out += _table(["setup", "steps/iteration", "iteration", "rollout: forward passes", "rollout: env step", "rollout: buffer, other", "update"], body)
    if record["ratios"]:
        out += ["", *_table(["ratio (medians, same run)", "value"], [[r["label"], f"{r['value']:.3g}x"] for r in record["ratios"]])]
    if record["notes"]:
        out += ["", *(f"Note: {note}" for note in record["notes"])]
    return "\n".join(out)

__all__ = ["format_tables", "human"]
