"""`smolvla deploy`: an SO follower arm and its cameras driven by a running `smolvla serve`.

`SOArmRobot` is the robot client's `Robot` (smolvla.serve.robot) for a connected arm:

    state  = float32[6] follower joints (degrees, gripper 0-100: LeRobot's SO follower units)
    action = float32[6] joint goals in the same units; `action_low`/`action_high` are the calibrated
             joint limits, so the client clamps every action into them before `send_action`
    images = the newest frame of each camera, as observation.images.<name>

The arm's own clamps (`max_relative_target`, limits) still apply on top: the client's clamp guarantees a
finite in-range action, the arm's bounds how far one tick may move. A hold (empty queue) writes nothing:
the servos keep their last goal; if the policy stalls for longer than the arm's watchdog, the watchdog
stops the arm where it is. Torque is released when `deploy` ends, however it ends (SIGTERM included), by
the arm's context manager. Imports: numpy, websockets, msgpack (no torch).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from smolvla.robots.cameras import ThreadedCamera
from smolvla.serve.client import ClientConfig, RobotClient
from smolvla.types import OBS_IMAGES_PREFIX, OBS_STATE, TASK

log = logging.getLogger(__name__)


class SOArmRobot:
    """A connected SO follower + connected cameras seen as a `Robot`; stamps every control tick."""

    def __init__(
        self, arm: Any, cameras: Sequence[ThreadedCamera], task: str, max_frame_age_s: float | None = 0.5
    ) -> None:
        self.arm, self.cameras, self.task, self.max_frame_age_s = arm, list(cameras), task, max_frame_age_s
        self.joints = tuple(arm.joint_names)
        self.camera_shapes = {OBS_IMAGES_PREFIX + c.name: tuple(c.shape) for c in self.cameras}
        self.state_dim = self.action_dim = len(self.joints)
        limits = arm.limits()
        self.action_low = np.array([limits[j][0] for j in self.joints], np.float32)
        self.action_high = np.array([limits[j][1] for j in self.joints], np.float32)
        self.tick_stamps: list[float] = []  # time.monotonic() of each send_action / hold
        self.holds = 0
        # A live rerun view (`deploy --viz`) and what it shows of the client: () -> (queue length, latencies).
        self.view: Any = None
        self.client_state: Callable[[], tuple[int, list[float]]] = lambda: (0, [])
        self._latencies_shown = 0

    def get_observation(self) -> dict[str, Any]:
        joints = self.arm.read_joints()
        obs: dict[str, Any] = {OBS_STATE: np.array([joints[j] for j in self.joints], np.float32), TASK: self.task}
        for cam in self.cameras:
            obs[OBS_IMAGES_PREFIX + cam.name] = cam.read_latest(self.max_frame_age_s)[0]
        if self.view is not None:
            self.view.observation(obs)
        return obs

    def send_action(self, action: np.ndarray) -> None:
        self.tick_stamps.append(time.monotonic())
        self.arm.send_goal({j: float(v) for j, v in zip(self.joints, np.asarray(action).tolist(), strict=True)})
        self._show(action)

    def hold(self) -> None:
        self.tick_stamps.append(time.monotonic())
        self.holds += 1
        self._show(None)

    def _show(self, action: np.ndarray | None) -> None:
        if self.view is None:
            return
        queue_length, latencies = self.client_state()
        self.view.control_tick(action, queue_length)
        for latency in latencies[self._latencies_shown :]:
            self.view.latency(latency)
        self._latencies_shown = len(latencies)


def tick_jitter(stamps: Sequence[float], fps: float) -> dict[str, float | int]:
    """How regular the control ticks were: period percentiles and the worst deviation from 1/fps (ms)."""
    periods = np.diff(np.asarray(stamps, dtype=np.float64)) * 1000.0
    if len(periods) == 0:
        return {"ticks": len(stamps)}
    target = 1000.0 / fps
    return {
        "ticks": len(stamps),
        "hz": round(float(len(periods) / (stamps[-1] - stamps[0])), 2) if stamps[-1] > stamps[0] else 0.0,
        "period_ms_p50": round(float(np.percentile(periods, 50)), 2),
        "period_ms_p99": round(float(np.percentile(periods, 99)), 2),
        "jitter_ms_std": round(float(periods.std()), 3),
        "jitter_ms_max": round(float(np.abs(periods - target).max()), 2),
    }


async def run_episodes(robot: SOArmRobot, config: ClientConfig, episodes: int, max_seconds: float) -> list[dict]:
    """Run `episodes` episodes of at most `max_seconds` each; one summary dict per episode."""
    summaries = []
    async with RobotClient(robot, config) as client:
        # The live view reads the current episode's stats while it runs (the client has no public accessor).
        robot.client_state = lambda: (len(client.queue), client._stats.latencies_s)
        await client.wait_connected(timeout=30.0)
        for episode in range(episodes):
            robot.tick_stamps.clear()
            robot._latencies_shown = 0
            stats = await client.run_episode(max_ticks=max(1, round(max_seconds * config.fps)))
            lat = sorted(stats.latencies_s)
            summaries.append({
                "episode": episode,
                "seconds": round(stats.duration_s, 3),
                "executed": stats.executed,
                "hold_ticks": stats.hold_ticks,
                "chunks": stats.chunks,
                "skipped": stats.skipped,
                "errors": stats.errors,
                "clipped_actions": stats.clipped_actions,
                "median_latency_s": round(lat[len(lat) // 2], 4) if lat else None,
                "tick": tick_jitter(robot.tick_stamps, config.fps),
            })  # fmt: skip
    return summaries


def deploy(robot: SOArmRobot, config: ClientConfig, episodes: int = 1, max_seconds: float = 30.0) -> list[dict]:
    """Blocking wrapper of `run_episodes` (the caller holds the arm's torque-release context)."""
    return asyncio.run(run_episodes(robot, config, episodes, max_seconds))
