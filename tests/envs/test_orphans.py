"""Spawned simulation workers end when their parent is killed instead of running on as orphans.

The watcher thread only ever runs in child processes: started in the pytest process it would stay there
(it cannot be stopped), and ending "this process" there would end the test run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

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
# Watches the pid given as argv[1]; prints its threads if it is still running 0.3 s later.
WATCHER = """
import sys, threading, time
from smolvla.envs.orphans import exit_with_parent
exit_with_parent(int(sys.argv[1]), poll_s=0.01)
time.sleep(0.3)
print(sorted(t.name for t in threading.enumerate()), flush=True)
"""


@pytest.fixture(autouse=True)
def _no_watcher_in_pytest():
    yield
    assert not [t for t in threading.enumerate() if t.name == "exit-with-parent"], "watcher left in pytest"


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        state = next(line for line in status.read_text().splitlines() if line.startswith("State:"))
    except (FileNotFoundError, ProcessLookupError):
        return False
    return " Z " not in state and "zombie" not in state


def _watch(parent_pid: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WATCHER, str(parent_pid)], capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_worker_exits_after_its_parent_is_killed():
    proc = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    worker = int(proc.stdout.readline())
    try:
        assert proc.wait(timeout=60) == -signal.SIGKILL
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(worker), f"worker {worker} outlived its killed parent"
    finally:
        proc.stdout.close()
        if proc.poll() is None:
            proc.kill()
        if _alive(worker):
            os.kill(worker, signal.SIGKILL)


def test_watcher_leaves_a_process_with_its_parent_alone():
    result = _watch(os.getpid())  # the child's parent is this process, alive throughout
    assert result.returncode == 0, result.stderr
    assert "'exit-with-parent'" in result.stdout  # still watching, and the process ran on


def test_watcher_ends_a_process_whose_parent_is_gone():
    result = _watch(os.getpid() + 1_000_000)  # no longer its parent, as after a re-parenting
    assert (result.returncode, result.stdout) == (1, ""), result.stderr
