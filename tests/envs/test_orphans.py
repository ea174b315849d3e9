"""Spawned simulation workers end when their parent is killed instead of running on as orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smolvla.envs.orphans import exit_with_parent

PARENT = """
import concurrent.futures as cf, multiprocessing, os, signal, sys, time
from smolvla.envs.orphans import exit_with_parent
if __name__ == "__main__":
    pool = cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=exit_with_parent, initargs=(os.getpid(), 0.05))
    print(pool.submit(os.getpid).result(), flush=True)
    pool.submit(time.sleep, 600)  # the worker is busy when its parent dies
    time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        state = next(line for line in status.read_text().splitlines() if line.startswith("State:"))
    except (FileNotFoundError, ProcessLookupError):
        return False
    return " Z " not in state and "zombie" not in state


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_worker_exits_after_its_parent_is_killed():
    proc = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    worker = int(proc.stdout.readline())
    try:
        assert proc.wait(timeout=60) == -9
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(worker), f"worker {worker} outlived its killed parent"
    finally:
        proc.stdout.close()
        if _alive(worker):
            os.kill(worker, signal.SIGKILL)


def test_watcher_leaves_a_process_with_its_parent_alone():
    exit_with_parent(os.getppid(), poll_s=0.01)  # our parent (pytest's launcher) is alive: nothing happens
    time.sleep(0.05)
