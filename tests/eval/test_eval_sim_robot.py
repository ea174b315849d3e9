"""SimEnv as the async engine's Robot: stepping, hold semantics, episode end, errors."""

from __future__ import annotations

import numpy as np
import pytest
from eval_helpers import CrispLineEnv, LineEnv

from smolvla.serve.robot import Robot
from smolvla.serve.sim_robot import SimRobot, default_hold, displacement_hold, repeat_hold


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


def test_recorded_frames_are_the_envs_own_video_when_it_has_one():
    robot = SimRobot(CrispLineEnv(image_size=8), record=True)
    robot.reset(seed=0)
    robot.send_action(np.array([0.5], np.float32))
    assert [f.shape for f in robot.frames] == [(32, 64, 3)] * 2  # not the 8 px camera the policy sees
    assert [int(f[0, 0, 0]) for f in robot.frames] == [0, 127]  # the state at reset, then after the step
    plain = SimRobot(LineEnv(image_size=8), record=True)
    plain.reset(seed=0)
    assert [f.shape for f in plain.frames] == [(8, 8, 3)]  # no own rendering: the policy's camera


def test_hold_steps_the_env_with_the_hold_of_the_last_action():
    env = LineEnv()
    robot = SimRobot(env, hold=lambda a: np.zeros_like(a))
    robot.reset(0)
    robot.hold()  # nothing commanded yet: the simulation stays where it is
    assert robot.steps == 0 and env.actions == []
    robot.send_action(np.array([0.1], np.float32))
    robot.hold()  # the client's queue ran empty: zero displacement here
    robot.send_action(np.array([0.1], np.float32))
    assert env.actions == pytest.approx([0.1, 0.0, 0.1])
    assert robot.hold_steps == 1 and robot.steps == 3


def test_reaching_robot_hold_keeps_servoing_to_the_last_target():
    from smolvla.serve.robot import ReachingRobot

    robot = ReachingRobot(n_joints=2, max_step=0.1, seed=0)
    robot.hold()
    assert robot.ticks == 0
    target = robot.q + np.float32(0.15)
    robot.send_action(target)
    robot.hold()
    np.testing.assert_allclose(robot.q, target, atol=1e-6)
    assert robot.ticks == 2 and all(np.array_equal(a, target) for a in robot.sent_actions)


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
    with pytest.raises(RuntimeError, match=r"call reset\(\) before hold"):
        robot.hold()
    with pytest.raises(RuntimeError, match=r"call reset\(\) before send_action"):
        robot.send_action(np.zeros(1, np.float32))
