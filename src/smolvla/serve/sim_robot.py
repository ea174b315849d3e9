"""A `SimEnv` seen as the async engine's `Robot`: the robot client drives the simulation.

`get_observation()` returns the latest observation; `send_action(a)` advances the simulation by one control
step with a new action; `hold()` advances it by one control step keeping the last commanded position (the
client calls it on ticks when its queue is empty). What a hold means depends on the action space:

- absolute position targets (e.g. SO-101 joints): re-commanding the target holds the arm, so the env is
  stepped with the repeated action;
- displacement actions (Meta-World: [dx, dy, dz, gripper]): repeating the last displacement would keep the
  arm moving, so a hold steps the env with zero displacement and the last gripper effort (time passes, the
  arm stands still, a grasped object stays grasped).

Before the first action of an episode there is no commanded position to keep: a hold then leaves the
simulation where it is (no step), as a real robot that has not been commanded yet stays put.

With `record`, every step's rollout-video frame is kept (`envs.video.video_frame`): the env's own crisp
rendering when it has one (the SO-101 suite's 256 px views), else the policy's cameras side by side. The
crisp frame is drawn inside the tick, so on a CPU renderer a recorded episode ticks slower than an
unrecorded one (about 75 ms a frame for two 256 px SO-101 views under software EGL).

Duck-typed on the SimEnv interface and numpy-only, so it imports without torch or any simulator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from smolvla.envs.base import SimEnv
from smolvla.envs.video import video_frame

# Maps the last executed action float32[action_dim] to the action that holds the robot still.
HoldFn = Callable[[np.ndarray], np.ndarray]


def repeat_hold(action: np.ndarray) -> np.ndarray:
    """Hold for absolute-target action spaces: command the same target again."""
    return action


def displacement_hold(action: np.ndarray) -> np.ndarray:
    """Hold for Meta-World's [dx, dy, dz, gripper] actions: no displacement, same gripper effort."""
    held = np.zeros_like(action)
    held[-1] = action[-1]
    return held


def default_hold(env: SimEnv) -> HoldFn:
    """The hold of an env's action space (Meta-World moves by displacements; the others take targets)."""
    return displacement_hold if env.name.startswith("metaworld/") else repeat_hold


class SimRobot:
    """Wraps `env` as a `smolvla.serve.robot.Robot` for one episode at a time.

    `reset(seed)` starts an episode; the episode is `done` on success, failure, `max_steps` env steps or the
    env's own time limit, after which `send_action` raises. `frames` keeps the video frame of every step of
    the episode, uint8[H, W, 3] each (the reset frame first), when `record` is true.
    """

    def __init__(
        self, env: SimEnv, max_steps: int | None = None, hold: HoldFn | None = None, record: bool = False
    ) -> None:
        limit = env.max_episode_steps if max_steps is None else max_steps
        if not 0 < limit <= env.max_episode_steps:
            raise ValueError(f"max_steps must be in [1, {env.max_episode_steps}] for {env.name}, got {max_steps}")
        self.env = env
        self.max_steps = limit
        self.hold_fn = hold or default_hold(env)
        self.record = record
        self.camera_shapes = {k: (env.image_size, env.image_size, 3) for k in env.camera_keys}
        self.state_dim = env.state_dim
        self.action_dim = env.action_dim
        # The env's valid action range (None when it has none): the client clamps actions into it.
        self.action_low, self.action_high = env.action_low, env.action_high
        self._obs: dict[str, Any] | None = None
        self._last_sent: np.ndarray | None = None
        self.steps = 0
        self.hold_steps = 0
        self.done = False
        self.info: dict[str, Any] = {"success": False}
        self.frames: list[np.ndarray] = []

    def reset(self, seed: int | None) -> dict[str, Any]:
        """Start an episode from `seed`; returns the first observation."""
        self._obs = self.env.reset(seed)
        self._last_sent = None
        self.steps = self.hold_steps = 0
        self.done = False
        self.info = {"success": False}
        self.frames = [video_frame(self.env, self._obs)] if self.record else []
        return self._obs

    @property
    def success(self) -> bool:
        return bool(self.info["success"])

    def get_observation(self) -> dict[str, Any]:
        if self._obs is None:
            raise RuntimeError(f"SimRobot({self.env.name}): call reset() before get_observation()")
        return self._obs

    def send_action(self, action: np.ndarray) -> None:
        """One control tick: float32[action_dim] (raw units) -> one env step."""
        self._check_running("send_action")
        self._last_sent = np.asarray(action, dtype=np.float32)
        self._step(self._last_sent)

    def _check_running(self, what: str) -> None:
        if self._obs is None:
            raise RuntimeError(f"SimRobot({self.env.name}): call reset() before {what}()")
        if self.done:
            raise RuntimeError(f"SimRobot({self.env.name}): episode ended after {self.steps} steps; call reset()")

    def hold(self) -> None:
        """One control tick keeping the last commanded position (no-op before the first action)."""
        self._check_running("hold")
        if self._last_sent is None:
            return
        self.hold_steps += 1
        self._step(self.hold_fn(self._last_sent))

    def _step(self, action: np.ndarray) -> None:
        obs, _, terminated, truncated, info = self.env.step(action)
        self._obs, self.info = obs, info
        self.steps += 1
        if self.record:
            self.frames.append(video_frame(self.env, obs))
        self.done = terminated or truncated or self.steps >= self.max_steps
