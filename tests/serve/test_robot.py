"""The simulated reaching robot and its scripted planner."""

from __future__ import annotations

import numpy as np
import pytest

from smolvla.serve.robot import ReachingRobot, Robot, reaching_expert_chunk
from smolvla.types import OBS_STATE, TASK


def test_reaching_robot_follows_the_interface_and_is_deterministic() -> None:
    a, b = ReachingRobot(seed=3), ReachingRobot(seed=3)
    assert isinstance(a, Robot)
    oa, ob = a.get_observation(), b.get_observation()
    np.testing.assert_array_equal(oa[OBS_STATE], ob[OBS_STATE])
    np.testing.assert_array_equal(oa[ReachingRobot.CAMERA], ob[ReachingRobot.CAMERA])
    assert oa[ReachingRobot.CAMERA].dtype == np.uint8 and oa[ReachingRobot.CAMERA].shape == (32, 32, 3)
    assert oa[OBS_STATE].dtype == np.float32 and oa[OBS_STATE].shape == (8,) and oa[TASK] == "reach goal"
    assert abs(a.q[0] - a.goal[0]) == pytest.approx(1.0)


def test_send_action_is_rate_limited_and_rendered() -> None:
    robot = ReachingRobot(n_joints=2, max_step=0.1, seed=0)
    q0, image0 = robot.q.copy(), robot.get_observation()[ReachingRobot.CAMERA]
    robot.send_action(q0 + np.array([1.0, -0.05], np.float32))
    np.testing.assert_allclose(robot.q - q0, [0.1, -0.05], atol=1e-6)
    assert robot.ticks == 1 and len(robot.sent_actions) == 1
    assert not np.array_equal(image0, robot.get_observation()[ReachingRobot.CAMERA])


def test_expert_chunk_reaches_the_goal() -> None:
    robot = ReachingRobot(n_joints=3, max_step=0.05, seed=1)
    chunk = reaching_expert_chunk(robot.get_observation()[OBS_STATE], chunk_size=40, max_step=0.05)
    assert chunk.shape == (40, 3) and chunk.dtype == np.float32
    for action in chunk:
        robot.send_action(action)
    assert robot.success  # every joint is within 2 rad of its goal: at most 2 / 0.05 = 40 ticks
    np.testing.assert_allclose(chunk[-1], robot.goal, atol=1e-6)


def test_send_action_errors() -> None:
    robot = ReachingRobot(n_joints=2)
    with pytest.raises(ValueError, match=r"expected float32\[2\], got \[3\]"):
        robot.send_action(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="non-finite action"):
        robot.send_action(np.array([np.nan, 0.0], np.float32))
    with pytest.raises(ValueError, match="image height 2 must be >= n_joints 4"):
        ReachingRobot(n_joints=4, image_hw=(2, 8))
