"""Keep video encoders from moving our threads to real-time scheduling.

SVT-AV1 (LeRobot's default codec, bundled in the `av` wheel) asks for SCHED_FIFO priority 99 for the thread
that starts an encoder and for its own worker threads whenever the process runs as root, and ignores a
refusal. Measured with av 17 / SVT-AV1 4.1 as root: after encoding five 64x64 frames the Python main thread
stays at SCHED_FIFO 99 for the rest of the process, and every process it starts afterwards inherits it. A
busy loop at that priority starves everything else on a 2-core robot computer, the control loop included.

Asking without CAP_SYS_NICE fails, so the fix is to hold that capability out of the calling thread's
*effective* set while an encoder runs (threads inherit the set of the thread that creates them) and to put
it back afterwards; the permitted set keeps it, so nothing else this process may do is lost. Linux only;
elsewhere, and where capabilities cannot be read, these are no-ops.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_CAP_VERSION_3 = 0x20080522  # linux/capability.h: 64-bit sets as two 32-bit words
CAP_SYS_NICE = 23
_REALTIME_POLICIES = {getattr(os, name) for name in ("SCHED_FIFO", "SCHED_RR") if hasattr(os, name)}


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _capabilities():
    """(libc, header, data) of the calling thread, or None where capabilities cannot be read."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        header, data = _CapHeader(_CAP_VERSION_3, 0), (_CapData * 2)()  # pid 0: the calling thread
        if libc.capget(ctypes.byref(header), data) != 0:
            return None
    except (OSError, AttributeError):
        return None
    return libc, header, data


def set_sys_nice(effective: bool, permanent: bool = False) -> bool:
    """Give or take CAP_SYS_NICE in the calling thread's effective set (and, `permanent`, its permitted set,
    which cannot be undone). Returns whether the capability was effective before."""
    caps = _capabilities()
    if caps is None:
        return False
    libc, header, data = caps
    word, bit = CAP_SYS_NICE // 32, 1 << (CAP_SYS_NICE % 32)
    had = bool(data[word].effective & bit)
    if effective:
        data[word].effective |= bit & data[word].permitted
    else:
        data[word].effective &= ~bit
        if permanent:
            data[word].permitted &= ~bit
    libc.capset(ctypes.byref(header), data)  # failure leaves things as they were: nothing to undo
    return had


@contextmanager
def no_realtime_scheduling() -> Iterator[None]:
    """Run the block (e.g. a video encoder's whole life) unable to raise thread priorities; afterwards the
    calling thread has its capabilities and scheduling policy back as they were."""
    before = _scheduling()
    had = set_sys_nice(False)
    try:
        yield
    finally:
        if had:
            set_sys_nice(True)
        if before is not None and _scheduling() != before and before[0] not in _REALTIME_POLICIES:
            os.sched_setscheduler(0, before[0], os.sched_param(before[1]))  # lowering needs no privilege


def _scheduling() -> tuple[int, int] | None:
    if not hasattr(os, "sched_getscheduler"):
        return None
    return os.sched_getscheduler(0), os.sched_getparam(0).sched_priority
