"""Find each demo's default level seed: the first seed whose first episode shows the failure.

    python scripts/pick_demo_seeds.py              # every demo of agents/pretrained/demos.yaml
    python scripts/pick_demo_seeds.py --only corner

For each demo, plays its first episode (as `goodhart demo NAME --seed S` does, sampled actions
included) for S = 0, 1, ... until every panel shows what the registry's ``shows`` says (the
intended target or the proxy, by the env's CAPABILITY and PREFERENCE flags), and prints that
seed beside the registry's. Copy it to ``seed:`` in ``agents/pretrained/demos.yaml`` after
retraining a shipped policy; tests/test_demos.py checks the registry's seeds.
"""

from __future__ import annotations

import argparse

import torch

from goodhart.agents import pretrained
from goodhart.experiments.teaching.panels import episode_verdicts, make_panels
from goodhart.experiments.seeds import SHOW_LEVEL_SEED
from goodhart.experiments.teaching.players import resolve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=list(pretrained.DEMOS), default=list(pretrained.DEMOS), help="demos to search (default: all)")
    parser.add_argument("--tries", type=int, default=200, help=f"seeds to try from {SHOW_LEVEL_SEED} (default: 200)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.only:
        demo = pretrained.DEMOS[name]
        panels = make_panels(resolve(name))
        found = next((s for s in range(SHOW_LEVEL_SEED, SHOW_LEVEL_SEED + args.tries) if episode_verdicts(panels, s) == list(demo.shows)), None)
        now = "shows it" if episode_verdicts(panels, demo.seed) == list(demo.shows) else "does NOT show it"
        pick = f"seed {found}" if found is not None else f"no seed below {SHOW_LEVEL_SEED + args.tries}"
        print(f"{name}: {pick} shows {list(demo.shows)}; the registry's seed {demo.seed} {now}")


if __name__ == "__main__":
    main()
