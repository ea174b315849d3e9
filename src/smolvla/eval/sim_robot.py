"""A `SimEnv` seen as the async engine's `Robot`: the robot client drives the simulation.

`get_observation()` returns the latest observation; `send_action(a)` advances the simulation by one control
step. The client calls `send_action` once per control tick: with the next queued action, or, when its queue
is empty, with the last action again ("hold"). What a hold means depends on the action space:

- absolute position targets (e.g. SO-101 joints): re-commanding the target holds the arm, so the env is
  stepped with the repeated action;
- displacement actions (Meta-World: [dx, dy, dz, gripper]): repeating the last displacement would keep the
  arm moving, so a hold steps the env with zero displacement and the last gripper effort (time passes, the
  arm stands still, a grasped object stays grasped).

The client re-sends the very array object it sent last when it holds (smolvla.serve.client, `_tick`), which
is how a hold is told apart from a new action that happens to have equal values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from smolvla.envs.base import SimEnv

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
    env's own time limit, after which `send_action` raises. `frames` keeps every observation of the episode
    (for a rollout video) when `record` is true.
    """

    def __init__(
        self, env: SimEnv, max_steps: int | None = None, hold: HoldFn | None = None, record: bool = False
    ) -> None:
        limit = env.max_episode_steps if max_steps is None else max_steps
        if not 0 < limit <= env.max_episode_steps:
            raise ValueError(f"max_steps must be in [1, {env.max_episode_steps}] for {env.name}, got {max_steps}")
        self.env = env
        self.max_steps = limit
        self.hold = hold or default_hold(env)
        self.record = record
        self.camera_shapes = {k: (env.image_size, env.image_size, 3) for k in env.camera_keys}
        self.state_dim = env.state_dim
        self.action_dim = env.action_dim
        self._obs: dict[str, Any] | None = None
        self._last_sent: np.ndarray | None = None
        self.steps = 0
        self.hold_steps = 0
        self.done = False
        self.info: dict[str, Any] = {"success": False}
        self.frames: list[dict[str, Any]] = []

    def reset(self, seed: int | None) -> dict[str, Any]:
        """Start an episode from `seed`; returns the first observation."""
        self._obs = self.env.reset(seed)
        self._last_sent = None
        self.steps = self.hold_steps = 0
        self.done = False
        self.info = {"success": False}
        self.frames = [self._obs] if self.record else []
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
        if self._obs is None:
            raise RuntimeError(f"SimRobot({self.env.name}): call reset() before send_action()")
        if self.done:
            raise RuntimeError(f"SimRobot({self.env.name}): episode ended after {self.steps} steps; call reset()")
        is_hold = action is self._last_sent
        self._last_sent = action
        if is_hold:
            self.hold_steps += 1
            action = self.hold(np.asarray(action, dtype=np.float32))
        obs, _, terminated, truncated, info = self.env.step(action)
        self._obs, self.info = obs, info
        self.steps += 1
        if self.record:
            self.frames.append(obs)
        self.done = terminated or truncated or self.steps >= self.max_steps
