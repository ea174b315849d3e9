"""Encoding AV1 as root must not leave our threads (or the processes they start) at real-time priority."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0, reason="SVT-AV1 raises priorities only as root on Linux"
)

FRAMES = "import numpy as np; frames = np.zeros((4, 64, 64, 3), np.uint8)\n"
REPORT = """
import os, subprocess, sys
def caps():
    return [l.split()[1] for l in open('/proc/thread-self/status') if l.startswith('CapEff')][0]
probe = 'import os; print(os.sched_getscheduler(0))'
child = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True)
print(os.sched_getscheduler(0), os.sched_getparam(0).sched_priority, int(child.stdout), caps())
"""
BARE_AV = """
import av, io
out = av.open(io.BytesIO(), 'w', format='mp4'); s = out.add_stream('libsvtav1', rate=30)
s.width = s.height = 64; s.pix_fmt = 'yuv420p'
for f in frames:
    for p in s.encode(av.VideoFrame.from_ndarray(f, format='rgb24')): out.mux(p)
for p in s.encode(): out.mux(p)
out.close()
"""
OURS = """
import pathlib, tempfile
from smolvla.data.encode import VideoEncoding, encode_video
encode_video(frames, pathlib.Path(tempfile.mkdtemp()) / 'v.mp4', 30, VideoEncoding())
"""


def _run(code: str) -> list[str]:
    caps_before = [line.split()[1] for line in open("/proc/thread-self/status") if line.startswith("CapEff")][0]
    env = {**os.environ, "SVT_LOG": "1"}
    done = subprocess.run([sys.executable, "-c", FRAMES + code + REPORT], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    *sched, caps = done.stdout.split()
    assert caps == caps_before  # the capability is back (or was never lost)
    return sched


def test_encoding_leaves_the_thread_and_its_children_at_normal_priority():
    fifo = str(os.SCHED_FIFO)
    # The hazard is real here: the codec alone leaves the thread and the next process at SCHED_FIFO 99 ...
    assert _run(BARE_AV) == [fifo, "99", fifo]
    # ... and our encoder does not.
    assert _run(OURS) == [str(os.SCHED_OTHER), "0", str(os.SCHED_OTHER)]
