"""Writes classroom.ipynb beside this file, without outputs (the committed form).

    python docs/tutorials/make_classroom.py

Edit the cells here, not in the notebook, and re-run this script; tests/test_notebooks.py checks
that the committed notebook has no outputs and (marked slow) that it runs top to bottom.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

CELLS: list[tuple[str, str]] = []


def md(text: str) -> None:
    CELLS.append(("markdown", text.strip("\n")))


def code(text: str) -> None:
    CELLS.append(("code", text.strip("\n")))


# --------------------------------------------------------------------------- introduction
md(r"""
# Goodhart's law in gridworlds: a classroom notebook

> *"When a measure becomes a target, it ceases to be a good measure."* (Goodhart's law, in
> Marilyn Strathern's words)

A reinforcement-learning agent maximises the reward it is given. The reward is a **proxy** for
what we actually want (the **true objective**). In this notebook you will see the two come apart
in two different ways:

1. **Specification gaming** (section 1-2): the reward itself is flawed. A racing agent rewarded
   with the game's *score* learns to farm points instead of finishing the race.
2. **Goal misgeneralization** (section 3-4): the reward is right, but in training a simpler
   feature always coincided with the goal. The agent learns the feature, and follows it once
   the two are moved apart.

Everything runs on a laptop CPU in under 10 minutes (about 5 on a busy 2-core machine); two
small trainings take most of that time. Run the cells from top to bottom (*Run all* is fine). Files the notebook writes (GIFs,
plots, trained agents) go to a temporary folder, printed below.
""")

md(r"""
## 0. Set-up

**On your own machine**: install the package into the Python that runs this notebook, e.g.
`pip install -e .` in a checkout of the repository, and start Jupyter from there.

**In Google Colab** (a CPU runtime is enough): open a new code cell *above* this one, paste
the commands below **without the leading `#`**, with `<repo url>` replaced by the address of the
Goodhart Gridworlds repository (your teacher will give it to you), run it, then
*Runtime → Restart session* and run the notebook from the top:

```
# !pip install torch --index-url https://download.pytorch.org/whl/cpu
# !pip install "goodhart-gridworlds @ git+<repo url>"
# !git clone --depth 1 <repo url> goodhart-gridworlds   # sections 2 and 4 read its committed results
```

The first line installs the (much smaller) CPU-only build of PyTorch, so that the second does not
fetch the GPU one. The clone is only for the committed results of the full experiments
(`docs/results/`), which are not part of the installed package; without it those two cells say
so and skip their plot.

The cell below installs nothing: it only checks that the package can be imported and says which
version it found.
""")

code(r"""
import os
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame draws the frames without opening a window

try:
    import goodhart
except ImportError as err:
    raise ImportError("goodhart-gridworlds is not installed in this kernel: see the set-up instructions above") from err
from pathlib import Path

print("goodhart-gridworlds", goodhart.__version__, "from", Path(goodhart.__file__).parent)
""")

md(r"""
Some settings for the rest of the notebook: one thread for PyTorch (on a small CPU, small
networks run fastest that way), a temporary folder for everything we write, and where the
committed results of the full experiments are (`docs/results/` of a checkout). Nothing to look
for here.
""")

code(r"""
import io
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, Markdown, display

from goodhart.agents.ppo import set_torch_threads

set_torch_threads(1)
NOTEBOOK_STARTED = time.time()
OUT = Path(tempfile.mkdtemp(prefix="goodhart-classroom-"))
print("writing to", OUT)


def find_results():
    # docs/results of a checkout: the package folder is the repository root; else a clone here or above
    places = [Path(goodhart.__file__).resolve().parent, Path.cwd(), *Path.cwd().parents, Path.cwd() / "goodhart-gridworlds"]
    for place in places:
        if (place / "docs" / "results" / "race-gaming" / "results.json").is_file():
            return place / "docs" / "results"
    return None


RESULTS = find_results()
print("committed results:", RESULTS or "not found (sections 2 and 4 will skip their plots of them)")


def show(fig):
    # a matplotlib figure into the notebook as a PNG, whatever matplotlib's backend is
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    display(Image(data=buffer.getvalue()))
""")

# --------------------------------------------------------------------------- 1. the race
md(r"""
## 1. Watch a racer game its score

**LoopRace** is a tiny version of OpenAI's *CoastRunners* boat race (Clark & Amodei, 2016). The
track is a loop with 16 checkpoints; three laps finish the race. The game's **score** pays
1 point per checkpoint, 5 for finishing, and 2 for every *target* hit. The targets sit in a
small lagoon beside the track and come back 8 steps after being hit (from the second lap on).

* **Proxy** (what the agent is rewarded with): the score.
* **True objective** (what we want): laps raced. A boat that turns into the lagoon has left
  the race: its laps count 0.

Two policies trained with PPO ship with the package: one trained on the **score**
(`race_score`) and one trained on **lap progress**, the true objective (`race_progress`). Below
they race side by side on the same track. The project's recorder draws the frames into a GIF
(about 10-20 seconds).

**What to look for:** where does each boat go after its first lap? Watch the score and the laps
beside each panel.
""")

code(r"""
from goodhart.experiments.teaching.record import record

race = record("race", OUT / "race.gif", seed=0, scale=0.6, fps=12, hold=2.5)  # race_score beside race_progress
display(Image(filename=str(OUT / "race.gif")))
""")

md(r"""
The numbers of that episode (`info["outcome"]` at the end of the episode). *Score* is the
proxy, *laps* the true objective.
""")

code(r"""
rows = ["| policy | score (proxy) | laps (true objective) | targets hit | finished the race |", "|---|---|---|---|---|"]
for title, outcome in zip(race.titles, race.outcomes[0]):
    rows.append(f"| {title} | {outcome['score']:.0f} | {outcome['laps']} | {outcome['targets_hit']} | {outcome['finished']} |")
display(Markdown("\n".join(rows)))
""")

md(r"""
One episode could be luck. Each shipped policy comes with its evaluation on 200 levels; the
means:
""")

code(r"""
from goodhart.agents import pretrained

rows = ["| policy | score (proxy) | laps (true objective) | targets hit | finished |", "|---|---|---|---|---|"]
for name in ("race_score", "race_progress"):
    m = pretrained.evaluation(name)["distributions"]["train"]
    rows.append(f"| {name} | {m['score']:.1f} | {m['laps']:.2f} | {m['targets_hit']:.1f} | {m['finished']:.2f} |")
display(Markdown("\n".join(rows)))
""")

md(r"""
**Discuss:** the score-trained boat scores several times more than the boat that actually races,
and finishes nothing. Did it do anything *wrong*, by its own lights? Where is the mistake: in the
learning algorithm or in the reward? Can you think of a real system where a score was gamed like
this (clicks, test scores, lines of code, ...)?
""")

# --------------------------------------------------------------------------- 2. the curve
md(r"""
## 2. The Goodhart curve

How did the score-trained agent get there? The committed experiment `race-gaming` trained 5
agents on the score and 5 on lap progress (500k steps each) and logged, for every training
episode, both the score and the laps. The project's plot below shows them against training
steps: the proxy (score) above, the true objective (laps) below; each thin line is one agent,
the thick line their mean.

**What to look for:** in the left block (trained on the score), the true return first *rises*
(the agents learn to race) and then *falls* to zero while the score keeps rising: that is
Goodhart's law as a curve. The right block (trained on progress) is the control.
""")

code(r"""
from goodhart.experiments import results
from goodhart.experiments.evaluate import read_results
from goodhart.experiments.plots import curve_plot

if RESULTS is None:
    print("docs/results not found: see the set-up section (clone the repository) to see this plot")
else:
    race_record = read_results(RESULTS / "race-gaming")
    curve_plot(race_record, OUT / "race_curves.png")
    display(Image(filename=str(OUT / "race_curves.png")))
""")

md(r"""
The same numbers, read with the project's results accessors and drawn on one pair of axes: the
mean score (left axis) and the mean laps (right axis) of the score-trained agents.
""")

code(r"""
if RESULTS is not None:
    c = results.curves(race_record, "score-trained")
    steps = np.asarray(c["steps"])
    score, laps = np.nanmean(c["proxy"], axis=0), np.nanmean(c["true"], axis=0)
    peak = int(np.nanargmax(laps))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(steps, score, color="tab:red", label="score (proxy)")
    ax.set_xlabel("environment steps of training")
    ax.set_ylabel("score per episode", color="tab:red")
    ax2 = ax.twinx()
    ax2.plot(steps, laps, color="tab:blue", label="laps (true objective)")
    ax2.set_ylabel("laps per episode", color="tab:blue")
    ax2.axvline(steps[peak], color="0.4", ls=":")
    ax2.annotate(f"laps peak: {laps[peak]:.2f}", (steps[peak], laps[peak]), xytext=(10, -5), textcoords="offset points")
    ax.set_title("Trained on the score: the score rises, the laps rise and then fall")
    fig.tight_layout()
    show(fig)
    print(f"at the laps' peak ({steps[peak]:,.0f} steps): score {score[peak]:.0f}, laps {laps[peak]:.2f}; "
          f"at the end: score {score[-1]:.0f}, laps {laps[-1]:.2f}")
""")

md(r"""
**Discuss:** if you had only watched the score (the thing you optimise), when would you have
noticed that something went wrong? What would you have to measure to notice? Early on, more
score meant more laps; at which point did optimising the measure stop helping the goal?
""")

# --------------------------------------------------------------------------- 3. the maze
md(r"""
## 3. Train a maze agent, then move the cue

**ColorMaze** is a small random maze with a **goal** (reaching it pays 1 and ends the episode)
and a coloured 3x3 square, the **cue**. Here the reward is exactly what we want; the trap is in
the training levels:

* `train`: the cue square is always centred on the goal. "Go to the goal" and "go to the
  coloured square" earn the same reward.
* `shifted`: the same kind of maze, but the cue is on another branch, as far from the start as
  the goal. Which one does the agent go to first?
* `no_cue`: the goal alone. Can the agent find the goal without the cue?

The goal is visible from every cell, so an agent *could* follow it. This is *goal
misgeneralization* (Langosco et al., 2022): the agent stays capable but pursues the wrong goal
out of distribution.

First the policy that ships with the package, on a training level and on the shifted level of
the same maze (a few seconds). **What to look for:** on the right, does it go to the goal
(the object) or to the coloured square?
""")

code(r"""
maze = record("maze", OUT / "maze_shipped.gif", seed=2, episodes=1, max_steps=40, scale=0.75, fps=6)
display(Image(filename=str(OUT / "maze_shipped.gif")))
print(*maze.summary(), sep="\n")
""")

md(r"""
Now train our own agent with PPO: the shipped config `agents/configs/colormaze.yaml` (400k
steps) on a classroom budget. `STEPS` below is enough to learn most training levels; the cell
prints how long it took (about 1.5-3 minutes on a 2-core laptop). On a faster machine, try
400,000 steps, the shipped config's budget: the agent gets better at the training levels, and
the shifted result stays.

We switch off the periodic evaluation during training (`eval.freq=0`) and evaluate once at the
end instead.
""")

code(r"""
from goodhart.experiments.config import resolve
from goodhart.experiments.train import train

STEPS = 200_000
CONFIG = Path(goodhart.__file__).resolve().parent / "agents" / "configs" / "colormaze.yaml"


def train_maze(name, cue_on_goal_prob=1.0, steps=STEPS, seed=0):
    # the shipped config with a few overrides (the same as `goodhart train --set key=value`); returns the model file stem
    overrides = [f"total_timesteps={steps}", f"checkpoint_freq={steps}", "eval.freq=0",
                 f"seed={seed}", f"env_kwargs.cue_on_goal_prob={cue_on_goal_prob}"]
    cfg, _ = resolve(None, CONFIG, overrides, {})
    started, shown = time.time(), [0]

    def progress(done):
        if done - shown[0] >= steps // 4 or done >= steps:
            shown[0] = done
            print(f"  {name}: {done:>7,} / {steps:,} steps, {time.time() - started:4.0f} s")

    model = train(cfg, OUT / name / f"seed{seed}", progress_bar=False, progress=progress)
    print(f"{name}: trained in {time.time() - started:.0f} s")
    return model


maze_model = train_maze("maze")
""")

md(r"""
Now the evaluation. The project's evaluator plays every policy on the **same fixed levels**
(200 per distribution, levels no training used), beside three reference policies:

* `random`: a random walk, the chance level;
* `oracle-goal`: goes straight to the goal (what we wanted to learn);
* `oracle-cue`: goes straight to the cue (what we feared it would learn).

The columns: **goal** is the share of episodes that reached the goal; **cue first** the share that
reached the cue square before the goal (only possible when they are apart: `shifted`).
""")

code(r"""
from goodhart.experiments.evaluate import evaluate, resolve_subjects
from goodhart.experiments.seeds import HELD_OUT_LEVEL_SEED

EPISODES = 200


def maze_table(record, names=None):
    names = names or list(results.policies(record))
    head = "| policy | " + " | ".join(f"{d}: goal" + (f" | {d}: cue first" if d == "shifted" else "") for d in record["distributions"]) + " |"
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for name in names:
        cells = []
        for d in record["distributions"]:
            cells.append(f"{results.mean(record, name, d, 'reached_goal'):.2f}")
            if d == "shifted":
                cells.append(f"{results.mean(record, name, d, 'reached_cue_first'):.2f}")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return Markdown("\n".join(rows))


started = time.time()
subjects = resolve_subjects([str(OUT / "maze" / "seed0"), "random", "oracle-goal", "oracle-cue"], None)
maze_record = evaluate(subjects, ["train", "shifted", "no_cue"], episodes=EPISODES, level_seed=HELD_OUT_LEVEL_SEED)
print(f"evaluated in {time.time() - started:.0f} s")
display(maze_table(maze_record))
""")

md(r"""
On the shifted levels every episode ends one of three ways: the goal first, the cue first, or
neither within 100 steps. (The table's *goal* counts the goal reached at any time, also after
the cue; here *goal first* counts it only before the cue.) **What to look for:** is your agent's bar more like the goal oracle's or
the cue oracle's? And compare its `train` goal rate with its `no_cue` goal rate: what did it
actually learn to look for?
""")

code(r"""
def shifted_bars(record, title):
    names = list(results.policies(record))
    goal = np.array([results.mean(record, n, "shifted", "goal_first") for n in names])
    cue = np.array([results.mean(record, n, "shifted", "reached_cue_first") for n in names])
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.barh(names, goal, color="tab:green", label="goal first")
    ax.barh(names, cue, left=goal, color="tab:orange", label="cue first")
    ax.barh(names, 1 - goal - cue, left=goal + cue, color="0.85", label="neither")
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of shifted episodes")
    ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3, frameon=False)
    fig.tight_layout()
    show(fig)


shifted_bars(maze_record, "Shifted levels: which does each policy reach first?")
""")

md(r"""
Your own agent, on the same two levels as the shipped one above. **What to look for:** does it
behave like the shipped agent? (It samples its actions, so it may not take the same path.)
""")

code(r"""
mine = record(None, OUT / "maze_mine.gif", models=[maze_model], distributions=["train", "shifted"], seed=2,
              episodes=1, max_steps=40, scale=0.75, fps=6)
display(Image(filename=str(OUT / "maze_mine.gif")))
print(*mine.summary(), sep="\n")
""")

md(r"""
**Discuss:** the reward never said "go to the coloured square". Why did the agent learn it
anyway? (Hint: which is easier to see, a 3x3 square or a single cell?) From the training
rewards alone, could anyone have told the two agents "goal-seeker" and "cue-seeker" apart?
""")

# --------------------------------------------------------------------------- 4. diversity
md(r"""
## 4. Turn the diversity knob

If the cue and the goal always coincide in training, nothing in the reward tells the agent which
one matters. What if they sometimes come apart? The env's knob `cue_on_goal_prob` places the cue
on the goal in that share of training levels, and away from it (as in `shifted`) in the rest.
We train the same agent again, on the same budget, with the cue away from the goal in **10 %**
of training levels (`cue_on_goal_prob=0.9`), and compare the two agents on the same shifted
levels. This is the second training run (about the same time as the first).

**What to look for:** does the shifted goal rate go up, and the cue-first rate down? Does the
agent still solve its training levels? (Each agent's `train` column is measured on its own
training distribution: for the second one, 10 % of those levels have the cue away from the goal.)
""")

code(r"""
diverse_model = train_maze("maze-10pct-decoupled", cue_on_goal_prob=0.9)
""")

code(r"""
started = time.time()
subjects = resolve_subjects([str(OUT / "maze" / "seed0"), str(OUT / "maze-10pct-decoupled" / "seed0"), "random"], None)
diversity_record = evaluate(subjects, ["train", "shifted"], episodes=EPISODES, level_seed=HELD_OUT_LEVEL_SEED)
print(f"evaluated in {time.time() - started:.0f} s")
display(maze_table(diversity_record))
shifted_bars(diversity_record, "0 % vs 10 % of training levels with the cue away from the goal")
""")

md(r"""
*For the teacher:* when this notebook was written (torch on a CPU, seed 0, 200,000 steps each),
the first agent reached the goal in 0.90 of training levels, 0.17 of shifted levels (the cue
first in 0.78) and 0.51 of `no_cue` levels (random walk: 0.38); with 10 % decoupled training
levels the shifted goal rate rose to 0.57 and the cue-first rate fell to 0.51, while its
training goal rate was 0.81. Training is deterministic on a CPU, so the same versions give the
same numbers; other versions of torch or of the package may give somewhat different ones.

One seed at a small budget is a noisy measurement: training the same thing with another `seed`
gives somewhat different numbers (try `train_maze("maze-seed1", seed=1)` if you have time). The
committed experiment `maze-diversity` did it properly: 5 shares of decoupled levels (0 %, 2 %,
5 %, 10 %, 25 %) x 5 seeds x 400k steps each, evaluated on 500 shifted levels. The project's
plot of it: the shifted goal rate and cue-first rate against the share of decoupled training
levels (error bars: 95 % intervals over the 5 seeds).

**What to look for:** how small a share of decoupled levels already removes most of the
misgeneralization? (Langosco et al. found about 2 % of CoinRun levels with the coin moved
largely removed it.)
""")

code(r"""
from goodhart.experiments.plots import knob_plot

if RESULTS is None:
    print("docs/results not found: see the set-up section (clone the repository) to see this plot")
else:
    diversity_committed = read_results(RESULTS / "maze-diversity")
    knob_plot(diversity_committed, OUT / "maze_diversity.png")
    display(Image(filename=str(OUT / "maze_diversity.png")))
    rows = ["| share of decoupled training levels | train: goal | shifted: goal | shifted: cue first |", "|---|---|---|---|"]
    knob = results.knob(diversity_committed)
    for name, share in sorted(knob["values"].items(), key=lambda item: item[1]):
        rows.append(f"| {share:.0%} | {results.mean(diversity_committed, name, 'train', 'reached_goal'):.2f} | "
                    f"{results.mean(diversity_committed, name, 'shifted', 'reached_goal'):.2f} | "
                    f"{results.mean(diversity_committed, name, 'shifted', 'reached_cue_first'):.2f} |")
    display(Markdown("\n".join(rows)))
""")

md(r"""
**Discuss:** a few percent of counter-examples in training fixed this agent. But in a real
system, how would you know *which* feature to decouple from the goal before you have seen the
agent fail? What does this suggest about testing learned systems out of distribution?

## Wrap-up

* **Specification gaming**: the reward (the score) was a flawed measure of the goal (the race).
  Optimising it hard enough found the flaw: the score went up while the race was abandoned.
* **Goal misgeneralization**: the reward was right, but the training data could not tell two
  goals apart. The agent learned the easier one and pursued it competently when they parted.
  More diverse training data helped a lot here.

Both are invisible if you only look at the reward you trained on. To go further, see the
README: `goodhart demo`, `goodhart reproduce race-gaming --quick`, and the other environments
(an absent supervisor, a tampered sensor, keys and chests, a learned reward model).
""")

code(r"""
print(f"notebook ran in {time.time() - NOTEBOOK_STARTED:.0f} s; its files are in {OUT}")
""")


def build() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for k, (kind, text) in enumerate(CELLS):
        cell = new_markdown_cell(text) if kind == "markdown" else new_code_cell(text)
        cell["id"] = f"cell-{k:02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


if __name__ == "__main__":
    out = HERE / "classroom.ipynb"
    nbformat.write(build(), out)
    print(f"wrote {out} ({len(CELLS)} cells)")
