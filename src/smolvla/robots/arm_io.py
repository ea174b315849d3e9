"""What `smolvla robot read / move / teleop` do with an arm, apart from the command line.

read_positions(port, calibration_file)  passive read: joint -> raw ticks, or calibrated units
move_and_wait(arm, goal, tolerance, timeout_s)   one goal, then poll until every joint is within tolerance
teleoperate(leader, follower, fps, seconds, cameras)   leader -> follower, the rate held measured
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from smolvla.robots import calibration as cal
from smolvla.robots.feetech.bus import FeetechBus
from smolvla.robots.loop_rate import LoopClock
from smolvla.robots.so_arm import IDS, JOINTS, NORM_MODES
from smolvla.types import OBS_IMAGES_PREFIX, OBS_STATE

# How often teleop prints the rate it held, and how often its preview shows the cameras and joints.
REPORT_EVERY_S = 5.0
PREVIEW_HZ = 10.0


def read_positions(port: Any, calibration_file: str | Path | None = None) -> dict[str, float]:
    """Present positions without touching torque or any register: raw ticks, or units with a calibration.

    Converting needs the servos to apply the file's homing offsets (any connect of the calibrated arm writes
    them); a servo holding another offset is an error naming the joint, not a silently wrong reading.
    """
    bus = FeetechBus(port, IDS)
    bus.open()
    try:
        raw = bus.sync_read("Present_Position")
        if calibration_file is None:
            return {j: float(raw[j]) for j in JOINTS}
        calibration = cal.load(calibration_file, IDS)
        offsets = bus.sync_read("Homing_Offset")
        stale = {
            j: (offsets[j], calibration[j].homing_offset) for j in JOINTS if offsets[j] != calibration[j].homing_offset
        }
        if stale:
            raise ValueError(
                f"{calibration_file}: the servos hold other homing offsets (joint: (servo, file)) {stale};"
                " connect the arm once with this calibration (e.g. `smolvla robot move`) to write it"
            )
        return {j: round(cal.to_units(raw[j], calibration[j], NORM_MODES[j]), 3) for j in JOINTS}
    finally:
        bus.close()


def parse_goal(text: str) -> dict[str, float]:
    """'{"shoulder_pan": 2048}' -> {"shoulder_pan": 2048.0}; names the unknown joints or the bad value."""
    try:
        goal = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"--goal is not JSON ({e}): {text!r}") from None
    if not isinstance(goal, dict) or not goal:
        raise ValueError(f"--goal must be a JSON object joint -> position, got {text!r}")
    unknown = sorted(set(goal) - set(JOINTS))
    if unknown:
        raise ValueError(f"--goal names unknown joints {unknown}; expected some of {list(JOINTS)}")
    bad = {
        j: v for j, v in goal.items() if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)
    }
    if bad:
        raise ValueError(f"--goal values must be finite numbers, got {bad}")
    return {j: float(v) for j, v in goal.items()}


def move_and_wait(arm: Any, goal: dict[str, float], tolerance: float, timeout_s: float) -> dict[str, float]:
    """Send `goal` (re-sent while a `max_relative_target` clamp shortens it), wait until within `tolerance`.

    Returns the final positions; TimeoutError naming the joints still off after `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        sent = arm.send_goal(goal)
        present = arm.read_joints()
        off = {j: (round(present[j], 2), round(v, 2)) for j, v in goal.items() if abs(present[j] - v) > tolerance}
        if not off:
            return {j: round(v, 3) for j, v in present.items()}
        if time.monotonic() > deadline:
            clamped = {j: round(v, 2) for j, v in sent.items() if abs(v - goal[j]) > 1e-6}
            raise TimeoutError(
                f"{arm} did not reach the goal within {timeout_s} s (joint: (present, goal)) {off}"
                + (f"; goals clamped by the arm's limits to {clamped}" if clamped else "")
            )
        time.sleep(0.02)


def teleoperate(
    leader: Any,
    follower: Any,
    fps: float,
    seconds: float,
    cameras: Sequence[Any] = (),
    report: Callable[[dict], None] = lambda summary: None,
    stop: Callable[[], bool] = lambda: False,
    view: Any = None,
) -> dict:
    """Leader joints -> follower goals at `fps` for `seconds` (0: until `stop()` or Ctrl-C).

    Every REPORT_EVERY_S, `report` gets the rate held so far; returns the whole run's rate (LoopClock.summary)
    with the frames each camera delivered per second. `view` (a `viz_live.LiveView`) previews the goals every
    tick and the cameras with the follower's joints at PREVIEW_HZ.
    """
    clock = LoopClock(fps)
    frames0 = {c.name: c.frames_captured for c in cameras}
    last_report = clock.start
    preview_every = max(1, round(fps / PREVIEW_HZ))
    while not stop() and (seconds <= 0 or time.monotonic() - clock.start < seconds):
        sent = follower.send_goal(leader.read_joints())
        if view is not None:
            if (len(clock.stamps) - 1) % preview_every == 0:  # stamps: one per tick begun
                view.observation(_preview(follower, cameras))
            view.control_tick(np.array([sent[j] for j in JOINTS]), 0)
        clock.wait()
        if time.monotonic() - last_report >= REPORT_EVERY_S:
            last_report = time.monotonic()
            report(clock.summary())
    summary: dict = clock.summary()
    elapsed = max(time.monotonic() - clock.start, 1e-9)
    if cameras:
        summary["camera_fps"] = {c.name: round((c.frames_captured - frames0[c.name]) / elapsed, 1) for c in cameras}
    return summary


def _preview(follower: Any, cameras: Sequence[Any]) -> dict[str, Any]:
    joints = follower.read_joints()
    obs: dict[str, Any] = {OBS_STATE: np.array([joints[j] for j in JOINTS], np.float32)}
    for cam in cameras:
        obs[OBS_IMAGES_PREFIX + cam.name] = cam.read_latest()[0]
    return obs
