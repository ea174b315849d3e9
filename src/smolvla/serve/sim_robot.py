"""A simulation environment (`smolvla.envs.SimEnv`) driven as a `Robot` by the async client.

Duck-typed on the SimEnv interface (camera_keys, image_size, state_dim, action_dim, reset(seed) -> obs,
step(action) -> (obs, reward, terminated, truncated, info)) so this module needs neither the simulators
nor `smolvla.envs` itself, and stays importable on a robot computer. Numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class SimEnvRobot:
    """One `send_action` = one `env.step`. The episode ends (`done`) on success, failure or the time limit;
    the client's `run_episode(until=lambda: robot.done)` stops there, and a further action is an error."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.camera_shapes = {key: (env.image_size, env.image_size, 3) for key in env.camera_keys}
        self.state_dim, self.action_dim = env.state_dim, env.action_dim
        self.task: str = env.task
        self._obs: dict[str, Any] | None = None
        self.done = self.success = False
        self.steps = 0

    def reset(self, seed: int | None = None) -> None:
        self._obs = self.env.reset(seed)
        self.done = self.success = False
        self.steps = 0

    def get_observation(self) -> dict[str, Any]:
        if self._obs is None:
            raise RuntimeError("SimEnvRobot: call reset(seed) before get_observation()")
        return self._obs

    def send_action(self, action: np.ndarray) -> None:
        if self._obs is None:
            raise RuntimeError("SimEnvRobot: call reset(seed) before send_action()")
        if self.done:
            raise RuntimeError(f"SimEnvRobot: the episode ended after {self.steps} steps; call reset(seed)")
        self._obs, _, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        self.success = bool(info.get("success", False))
        self.done = bool(terminated or truncated)
