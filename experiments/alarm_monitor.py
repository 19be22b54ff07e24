"""The divergence alarm during training: a callback that feeds every finished episode to the
alarm (:mod:`goodhart.experiments.alarm`) and, when it fires, says so once beside the progress
bar, records it (TensorBoard ``alarm/fired`` and a text entry, the run folder's
``alarm.json``) and, as the run's config asks, trains on, stops, or rolls the policy back to
where the audited true return was best."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import TensorBoardOutputFormat

from goodhart.agents.files import write_atomic
from goodhart.experiments.alarm import Alarm, DivergenceAlarm, trained_on
from goodhart.experiments.config import RunConfig
from goodhart.experiments.curves import ALARM_FILE, episode_rows


def alarm_message(alarm: Alarm, action: str) -> str:
    """The alarm in one line, as the progress bar's neighbour prints it."""
    then = {"log": "training goes on", "stop": "training stops here",
            "rollback": f"training stops; the policy rolls back to step {alarm.best_step:,}"}[action]
    return (f"divergence alarm at step {alarm.step:,}: {alarm.reason} (proxy rising p={alarm.proxy_slope_p:.2g}, "
            f"true falling p={alarm.true_slope_p:.2g}, correlation {alarm.correlation:.2f}; "
            f"{alarm.audited_in_window} audited episodes in the window); {then}")


def stopped_by_alarm(folder: Path) -> bool:
    """Whether the run in ``folder`` was ended by its alarm (``on_alarm`` stop or rollback):
    resuming it does not train on past the alarm."""
    path = folder / ALARM_FILE
    return path.is_file() and json.loads(path.read_text()).get("action") in ("stop", "rollback")


class AlarmMonitor(BaseCallback):
    """Feeds the alarm every finished episode's trained-on return and true return; acts on it."""

    def __init__(self, cfg: RunConfig, folder: Path, resumed_at: int | None) -> None:
        super().__init__()
        assert cfg.alarm is not None
        self.config = cfg.alarm
        self.folder = folder
        self.proxy = trained_on(cfg.reward_model)
        self.alarm = DivergenceAlarm(cfg.alarm, cfg.seed)
        self.best: tuple[int, dict[str, Any]] | None = None  # (step, policy state) at the audited true return's best
        if resumed_at is not None and (folder / "episodes.csv").is_file():  # the same stream gives the same state
            self.alarm.feed([r for r in episode_rows(folder) if int(r["timestep"]) <= resumed_at], self.proxy)

    def _on_step(self) -> bool:
        finished = [info["outcome"] for info in self.locals["infos"] if "outcome" in info]
        if not finished:
            return True
        for outcome in finished:
            self.alarm.observe(self.num_timesteps, outcome[self.proxy], outcome["true_return"])
        best_before = self.alarm.best_step
        fired = self.alarm.check(self.num_timesteps)
        if self.config.on_alarm == "rollback" and self.alarm.best_step != best_before and fired is None:
            self.best = (self.alarm.best_step, copy.deepcopy(self.model.policy.state_dict()))
        if fired is None:
            return True
        return self._fire(fired)

    def _on_rollout_end(self) -> None:
        self.logger.record("alarm/fired", float(self.alarm.fired is not None))

    def _fire(self, alarm: Alarm) -> bool:
        action = self.config.on_alarm
        rolled_back_to = None
        if action == "rollback":
            if self.best is None:
                print(f"warning: the alarm asks for a rollback, but no better policy was kept in this process "
                      f"(the run resumed after step {self.alarm.best_step:,}): training stops with the current one", file=sys.stderr)
            else:
                rolled_back_to = self.best[0]
                self.model.policy.load_state_dict(self.best[1])
        message = alarm_message(alarm, action)
        from tqdm import tqdm

        tqdm.write(message, file=sys.stderr)
        for output in self.logger.output_formats:
            if isinstance(output, TensorBoardOutputFormat):
                output.writer.add_text("alarm", message, alarm.step)
                output.writer.flush()
        record = {**alarm.as_dict(), "action": action, "rolled_back_to": rolled_back_to, "proxy": self.proxy,
                  "config": self.config.model_dump()}
        write_atomic(self.folder / ALARM_FILE, lambda tmp: tmp.write_text(json.dumps(record, indent=2) + "\n"))
        return action == "log"
