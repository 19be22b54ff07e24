"""The worker process of :class:`~goodhart.experiments.engine.workers.LocalBackend`: reads
``(stage, spec, progress file, steps)`` pickled on its standard input and runs
``stage(spec, progress)``. It asks Linux to kill it when its parent dies, so that a killed
scheduler leaves no job behind; an error ends it with its message as the log's last line."""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import sys
import traceback

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Be killed when the scheduler ends, however it ends (Linux; elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:  # it died before we asked
            os._exit(1)


def main() -> None:
    die_with_parent(int(sys.argv[1]))
    stage, spec, progress_file, steps = pickle.loads(sys.stdin.buffer.read())
    from goodhart.agents.ppo import set_torch_threads
    from goodhart.experiments.engine.jobs import Progress

    set_torch_threads(1)
    sys.stdout.reconfigure(line_buffering=True)
    try:
        stage(spec, Progress(progress_file, steps))
    except Exception as err:  # noqa: BLE001 - every error ends the job; its message is the log's last line
        traceback.print_exc()
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
