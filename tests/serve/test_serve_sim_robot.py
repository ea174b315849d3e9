"""The SimEnv -> Robot adapter, on a minimal SimEnv subclass (no simulator needed)."""

from __future__ import annotations

import numpy as np
import pytest

from smolvla.serve.robot import Robot
from smolvla.serve.sim_robot import SimEnvRobot

base = pytest.importorskip("smolvla.envs.base")


class LineEnv(base.SimEnv):
    """A point on a line that must reach x = 1; one camera, state [x], action [dx]."""

    def __init__(self) -> None:
        self.name, self.task, self.camera_keys, self.image_size = "line", "go right", ("observation.images.cam",), 8
        self.state_dim, self.action_dim, self.fps, self.max_episode_steps = 1, 1, 10, 5
        self.x = 0.0

    def render(self) -> dict[str, np.ndarray]:
        return {"cam": np.full((8, 8, 3), int(self.x * 100), np.uint8)}

    def _reset(self, seed: int | None) -> dict:
        self.x = 0.0
        return self._make_obs(self.render(), np.array([self.x]))

    def _step(self, action: np.ndarray) -> base.StepResult:
        self.x += float(action[0])
        obs = self._make_obs(self.render(), np.array([self.x]))
        return base.StepResult(obs=obs, reward=0.0, success=self.x >= 1.0)


def test_adapter_steps_the_env_and_reports_success() -> None:
    robot = SimEnvRobot(LineEnv())
    assert isinstance(robot, Robot)
    assert robot.camera_shapes == {"observation.images.cam": (8, 8, 3)} and (robot.state_dim, robot.action_dim) == (
        1,
        1,
    )
    robot.reset(0)
    obs = robot.get_observation()
    assert obs["observation.images.cam"].shape == (8, 8, 3) and obs["task"] == "go right"
    robot.send_action(np.array([0.6], np.float32))
    assert not robot.done and robot.get_observation()["observation.state"][0] == pytest.approx(0.6)
    robot.send_action(np.array([0.6], np.float32))
    assert robot.done and robot.success and robot.steps == 2
    with pytest.raises(RuntimeError, match="the episode ended after 2 steps; call reset"):
        robot.send_action(np.array([0.1], np.float32))


def test_adapter_time_limit_and_reset_errors() -> None:
    robot = SimEnvRobot(LineEnv())
    with pytest.raises(RuntimeError, match=r"call reset\(seed\) before get_observation"):
        robot.get_observation()
    robot.reset(1)
    for _ in range(5):
        robot.send_action(np.array([0.0], np.float32))
    assert robot.done and not robot.success
    robot.reset(2)
    assert not robot.done and robot.steps == 0
