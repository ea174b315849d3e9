"""Worker processes that exit when their parent dies.

Simulation workers (datagen rollouts, evaluation episodes) are spawned processes busy for minutes inside
MuJoCo. If the parent is killed (Ctrl-C twice, SIGKILL, a crashed notebook) nothing tells them to stop:
they would keep rendering on cores nobody uses any more. A pool initializer starts a daemon thread that
notices the re-parenting and ends the process.
"""

from __future__ import annotations

import os
import threading
import time

POLL_S = 0.5


def exit_with_parent(parent_pid: int, poll_s: float = POLL_S) -> None:
    """Pool initializer: end this process (exit code 1) soon after `parent_pid` stops being its parent."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(1)  # no cleanup: the parent that would collect results is gone

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
