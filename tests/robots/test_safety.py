"""Safety: limit and max_relative_target clamps, non-finite refusal, torque release, the watchdog."""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from smolvla.robots.safety import UnsafeGoalError, Watchdog, clamp_goal, torque_released_on_exit
from smolvla.robots.sim_bus import SimBusServer
from smolvla.robots.so_arm import SOFollower

LIMITS = {"elbow_flex": (-90.0, 90.0), "gripper": (0.0, 100.0)}


def test_goals_are_clamped_into_the_limits(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        assert clamp_goal({"elbow_flex": 120.0, "gripper": 40.0}, LIMITS) == {"elbow_flex": 90.0, "gripper": 40.0}
    assert "elbow_flex goal 120.000 outside its limits [-90.000, 90.000]; clamped to 90.000" in caplog.text
    assert "gripper" not in caplog.text  # an untouched joint is not logged


def test_max_relative_target_caps_each_step(caplog) -> None:
    present = {"elbow_flex": 10.0, "gripper": 50.0}
    with caplog.at_level(logging.WARNING):
        got = clamp_goal({"elbow_flex": 30.0, "gripper": 45.0}, LIMITS, present, max_relative_target=5.0)
    assert got == {"elbow_flex": 15.0, "gripper": 45.0}
    assert "elbow_flex goal 30.000 is 20.000 from present 10.000 (max 5.000 per tick); clamped to 15.000" in caplog.text
    per_joint = clamp_goal({"elbow_flex": -30.0, "gripper": 90.0}, LIMITS, present, {"gripper": 10.0})
    assert per_joint == {"elbow_flex": -30.0, "gripper": 60.0}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_goals_are_refused_whole(caplog, bad: float) -> None:
    with caplog.at_level(logging.ERROR), pytest.raises(UnsafeGoalError, match="non-finite values.*elbow_flex"):
        clamp_goal({"elbow_flex": bad, "gripper": 10.0}, LIMITS)
    assert "refused goal with non-finite joints" in caplog.text and "elbow_flex" in caplog.text


def test_unknown_joints_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown joints \['elbow'\]"):
        clamp_goal({"elbow": 1.0}, LIMITS)


def test_torque_released_on_an_exception() -> None:
    released = []

    def release() -> None:  # records what a second Ctrl-C / SIGTERM would do during the release
        released.append((signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)))

    with pytest.raises(RuntimeError, match="policy crashed"), torque_released_on_exit(release):
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        raise RuntimeError("policy crashed")
    assert released == [(signal.SIG_IGN, signal.SIG_IGN)]
    # The handlers are restored afterwards.
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_watchdog_fires_once_per_stall_and_rearms() -> None:
    stalls = []
    dog = Watchdog(0.05, lambda: stalls.append(time.monotonic())).start()
    try:
        time.sleep(0.2)
        assert len(stalls) == 1  # once, not on every check
        dog.kick()
        time.sleep(0.02)
        assert len(stalls) == 1
        time.sleep(0.15)
        assert len(stalls) == 2
    finally:
        dog.stop()
    with pytest.raises(ValueError, match="watchdog timeout must be > 0 s, got 0"):
        Watchdog(0, lambda: None)


@pytest.fixture
def sim(tmp_path):
    with SimBusServer(tmp_path / "ttySIM") as server:
        yield server


def test_watchdog_holds_the_follower_where_it_is(sim: SimBusServer, tmp_path) -> None:
    with SOFollower(str(sim.link_path), "a", calibration_dir=tmp_path, watchdog_s=0.1) as arm:
        arm.send_goal({"shoulder_pan": 3500.0})
        time.sleep(0.4)  # the policy stalls; the watchdog re-commands the present position
        assert arm.watchdog.stalls == 1
        goal = sim.arm.servos[0].peek("Goal_Position")
        assert 2048 < goal < 3500
        time.sleep(0.1)
        assert abs(arm.read_joints()["shoulder_pan"] - goal) <= 2


def test_torque_released_when_leaving_the_arm_on_an_exception(sim: SimBusServer, tmp_path) -> None:
    with pytest.raises(KeyError), SOFollower(str(sim.link_path), "a", calibration_dir=tmp_path) as arm:
        assert all(s.torque_enabled for s in sim.arm.servos)
        arm.send_goal({"gripper": 2100.0})
        raise KeyError("boom")
    assert not any(s.torque_enabled for s in sim.arm.servos)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_torque_released_on_a_signal(sim: SimBusServer, tmp_path, sig: int) -> None:
    script = textwrap.dedent(
        f"""
        import time
        from smolvla.robots.so_arm import SOFollower
        with SOFollower({str(sim.link_path)!r}, "a", calibration_dir={str(tmp_path)!r}) as arm:
            arm.send_goal({{"shoulder_pan": 2500.0}})
            print("ready", flush=True)
            time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        assert all(s.torque_enabled for s in sim.arm.servos)
        os.kill(proc.pid, sig)
        code = proc.wait(timeout=20)
        # SIGTERM -> SystemExit(128 + 15); an uncaught KeyboardInterrupt ends Python by SIGINT itself.
        assert code == (143 if sig == signal.SIGTERM else -signal.SIGINT), proc.stderr.read()
    finally:
        proc.kill()
    assert not any(s.torque_enabled for s in sim.arm.servos)


def test_disconnect_releases_every_servo_it_can_reach(sim: SimBusServer, tmp_path, caplog) -> None:
    arm = SOFollower(str(sim.link_path), "a", calibration_dir=tmp_path, timeout_s=0.05, retries=0)
    arm.connect()
    assert all(s.torque_enabled for s in sim.arm.servos)
    sim.arm.servos[2].connected = False  # elbow_flex's cable comes loose
    with caplog.at_level(logging.ERROR):
        arm.disconnect()
    assert "torque off not confirmed by {'elbow_flex'" in caplog.text
    assert [s.torque_enabled for s in sim.arm.servos] == [False, False, True, False, False, False]
    assert not arm.bus.is_open


def test_a_failed_connect_leaves_no_torque_on(sim: SimBusServer, tmp_path, monkeypatch) -> None:
    arm = SOFollower(str(sim.link_path), "a", calibration_dir=tmp_path, watchdog_s=1.0)

    def broken_watchdog():  # fails after the follower switched torque on
        assert all(s.torque_enabled for s in sim.arm.servos)
        raise RuntimeError("no thread for the watchdog")

    monkeypatch.setattr(arm.watchdog, "start", broken_watchdog)
    with pytest.raises(RuntimeError, match="no thread for the watchdog"):
        arm.connect()
    assert not any(s.torque_enabled for s in sim.arm.servos)
    assert not arm.bus.is_open
