"""What stands between a goal and the servos: clamps, refusals, torque release, and a stall watchdog.

- `clamp_goal`: a goal holding NaN/inf is refused whole (`UnsafeGoalError`: nothing is sent, the servos keep
  their last goal); each joint is clamped into its limits (the calibrated range of motion) and then to
  within `max_relative_target` of its present position. Every refusal and clamp is logged with the joint
  and the values.
- `torque_released_on_exit`: a context manager that releases torque however the block ends (return,
  exception, SIGINT, SIGTERM); SIGTERM is turned into `SystemExit` so the `finally` runs.
- `Watchdog`: calls `on_stall` once when no goal has arrived for `timeout_s` (the arm then holds where it
  is instead of finishing a stale move); a new goal re-arms it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)


class UnsafeGoalError(ValueError):
    """A goal refused whole (non-finite values); nothing was sent to the servos."""


def clamp_goal(
    goal: dict[str, float],
    limits: dict[str, tuple[float, float]],
    present: dict[str, float] | None = None,
    max_relative_target: float | dict[str, float] | None = None,
) -> dict[str, float]:
    """The goal to send: finite, inside `limits`, within `max_relative_target` of `present` per joint."""
    unknown = sorted(set(goal) - set(limits))
    if unknown:
        raise ValueError(f"unknown joints {unknown}; this arm has {list(limits)}")
    bad = {j: v for j, v in goal.items() if not math.isfinite(float(v))}
    if bad:
        log.error("safety: refused goal with non-finite joints %s (nothing sent)", bad)
        raise UnsafeGoalError(f"goal holds non-finite values {bad}; refused, the arm keeps its last goal")
    out = {}
    for joint, value in goal.items():
        lo, hi = limits[joint]
        safe = min(hi, max(lo, float(value)))
        if safe != value:
            log.warning(
                "safety: %s goal %.3f outside its limits [%.3f, %.3f]; clamped to %.3f", joint, value, lo, hi, safe
            )
        step = _max_step(max_relative_target, joint)
        if step is not None:
            if present is None:
                raise ValueError("max_relative_target needs the present positions")
            now = present[joint]
            stepped = min(now + step, max(now - step, safe))
            if stepped != safe:
                log.warning(
                    "safety: %s goal %.3f is %.3f from present %.3f (max %.3f per tick); clamped to %.3f",
                    joint, safe, safe - now, now, step, stepped,
                )  # fmt: skip
            safe = stepped
        out[joint] = safe
    return out


def _max_step(max_relative_target: float | dict[str, float] | None, joint: str) -> float | None:
    if isinstance(max_relative_target, dict):
        return max_relative_target.get(joint)
    return max_relative_target


def validate_max_relative_target(value: float | dict[str, float] | None, joints: tuple[str, ...]) -> None:
    values = value.values() if isinstance(value, dict) else [] if value is None else [value]
    if any(not math.isfinite(v) or v <= 0 for v in values):
        raise ValueError(f"max_relative_target must be positive and finite, got {value}")
    if isinstance(value, dict) and set(value) - set(joints):
        raise ValueError(f"max_relative_target names unknown joints {sorted(set(value) - set(joints))}")


@contextlib.contextmanager
def torque_released_on_exit(release: Callable[[], None]) -> Iterator[None]:
    """Run the block; then call `release` (e.g. torque off) whether it returned, raised or was signalled.

    SIGINT already raises KeyboardInterrupt; SIGTERM is made to raise SystemExit(143) for the block's
    duration. Both are ignored while `release` runs, so a second Ctrl-C cannot cut it short. Signal
    handlers can only be set from the main thread: elsewhere the block still releases on exit and
    exceptions, and a warning says signals are not covered.
    """
    on_main = threading.current_thread() is threading.main_thread()
    previous = {}
    if on_main:
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        signal.signal(signal.SIGTERM, _raise_system_exit)
    else:
        log.warning("safety: not on the main thread; SIGTERM will not release torque")
    try:
        yield
    finally:
        try:
            if on_main:  # a second Ctrl-C or SIGTERM must not cut the release short
                for sig in previous:
                    signal.signal(sig, signal.SIG_IGN)
            release()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _raise_system_exit(signum: int, frame) -> None:
    log.warning("safety: received signal %d; releasing torque", signum)
    raise SystemExit(128 + signum)


class Watchdog:
    """Calls `on_stall()` (from its own thread) once each time `kick()` has not been called for `timeout_s`."""

    def __init__(self, timeout_s: float, on_stall: Callable[[], None]) -> None:
        if not timeout_s > 0:
            raise ValueError(f"watchdog timeout must be > 0 s, got {timeout_s}")
        self.timeout_s, self.on_stall = timeout_s, on_stall
        self.stalls = 0
        self._last = time.monotonic()
        self._fired = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def kick(self) -> None:
        self._last = time.monotonic()
        self._fired = False

    def start(self) -> Watchdog:
        self.kick()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(min(self.timeout_s / 4, 0.05)):
            idle = time.monotonic() - self._last
            if idle >= self.timeout_s and not self._fired:
                self._fired = True
                self.stalls += 1
                log.warning("watchdog: no new goal for %.3f s (limit %.3f s); holding position", idle, self.timeout_s)
                try:
                    self.on_stall()
                except Exception:
                    log.exception("watchdog: holding position failed")
