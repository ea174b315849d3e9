"""SimEnv as the async engine's Robot: stepping, hold semantics, episode end, errors."""

from __future__ import annotations

import numpy as np
import pytest
from eval_helpers import LineEnv

from smolvla.eval.sim_robot import SimRobot, default_hold, displacement_hold, repeat_hold
from smolvla.serve.robot import Robot


def test_is_a_robot_and_steps_the_env():
    robot = SimRobot(LineEnv(image_size=8), record=True)
    assert isinstance(robot, Robot)
    assert robot.camera_shapes == {"observation.images.top": (8, 8, 3)}
    assert (robot.state_dim, robot.action_dim) == (2, 1)
    obs = robot.reset(seed=10)
    assert obs["observation.state"].tolist() == pytest.approx([0.1, 0.9])
    robot.send_action(np.array([0.2], np.float32))
    assert robot.get_observation()["observation.state"][0] == pytest.approx(0.3)
    assert robot.steps == 1 and not robot.done and len(robot.frames) == 2


def test_hold_is_the_same_object_resent():
    env = LineEnv()
    robot = SimRobot(env, hold=lambda a: np.zeros_like(a))
    robot.reset(0)
    a = np.array([0.1], np.float32)
    robot.send_action(a)
    robot.send_action(a)  # the client re-sends its last action object when its queue is empty
    robot.send_action(np.array([0.1], np.float32))  # equal values, new action: not a hold
    assert env.actions == pytest.approx([0.1, 0.0, 0.1])
    assert robot.hold_steps == 1 and robot.steps == 3


def test_hold_functions():
    a = np.array([0.5, -0.2, 0.3, 0.8], np.float32)
    assert displacement_hold(a).tolist() == pytest.approx([0.0, 0.0, 0.0, 0.8])
    assert repeat_hold(a) is a
    assert default_hold(LineEnv(name="metaworld/reach-v3")) is displacement_hold
    assert default_hold(LineEnv(name="so101/pick-place")) is repeat_hold


def test_episode_ends_on_success_and_on_max_steps():
    robot = SimRobot(LineEnv(), max_steps=3)
    robot.reset(0)
    for _ in range(3):
        robot.send_action(np.array([0.1], np.float32))
    assert robot.done and not robot.success
    with pytest.raises(RuntimeError, match=r"episode ended after 3 steps; call reset\(\)"):
        robot.send_action(np.array([0.1], np.float32))
    robot.reset(0)
    robot.send_action(np.array([1.5], np.float32))
    assert robot.done and robot.success and robot.steps == 1


def test_errors():
    with pytest.raises(ValueError, match=r"max_steps must be in \[1, 20\] for fake/line, got 21"):
        SimRobot(LineEnv(), max_steps=21)
    robot = SimRobot(LineEnv())
    with pytest.raises(RuntimeError, match=r"call reset\(\) before get_observation"):
        robot.get_observation()
    with pytest.raises(RuntimeError, match=r"call reset\(\) before send_action"):
        robot.send_action(np.zeros(1, np.float32))
