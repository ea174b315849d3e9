"""A fixed-rate loop clock that also measures the rate it held (teleop, record, replay, benchmarks).

clock = LoopClock(fps=30)
while ...:
    do_one_tick()
    clock.wait()        # sleeps to the next tick; a late tick restarts the schedule instead of bursting
clock.summary()         # {"ticks", "hz", "period_ms_p50", "period_ms_p99", "period_ms_max", "late_ticks"}
"""

from __future__ import annotations

import time

import numpy as np

# A tick whose period exceeds the target by this factor counts as late.
LATE_FACTOR = 1.5


class LoopClock:
    def __init__(self, fps: float) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.dt = 1.0 / fps
        self.start = self._deadline = time.monotonic()
        self.stamps: list[float] = [self.start]  # monotonic time at which each tick began

    def wait(self) -> None:
        """Sleep until the next tick is due; record when it begins."""
        self._deadline += self.dt
        delay = self._deadline - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:  # behind schedule: do not run a burst of ticks to catch up
            self._deadline = time.monotonic()
        self.stamps.append(time.monotonic())

    def summary(self) -> dict[str, float | int]:
        """What the loop held: mean rate, tick period percentiles (ms) and how many ticks were late."""
        periods = np.diff(np.asarray(self.stamps))
        if len(periods) == 0:
            return {"ticks": 0, "hz": 0.0}
        ms = periods * 1000.0
        return {
            "ticks": int(len(periods)),
            "hz": round(float(len(periods) / (self.stamps[-1] - self.stamps[0])), 2),
            "period_ms_p50": round(float(np.percentile(ms, 50)), 2),
            "period_ms_p99": round(float(np.percentile(ms, 99)), 2),
            "period_ms_max": round(float(ms.max()), 2),
            "late_ticks": int((periods > LATE_FACTOR * self.dt).sum()),
        }
