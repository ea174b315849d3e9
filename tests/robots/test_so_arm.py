"""SO-100/SO-101 follower and leader on the simulated bus: connect checks, units, clamps, torque, set-up."""

from __future__ import annotations

import time

import pytest

from smolvla.robots import calibration as cal
from smolvla.robots.calibration import MotorCalibration
from smolvla.robots.safety import UnsafeGoalError
from smolvla.robots.sim_bus import SimBusServer
from smolvla.robots.so_arm import IDS, JOINTS, SOFollower, SOLeader

# Every joint centred at 2047 with +-1000 ticks of travel; the gripper opens over 1500..2500.
CALIBRATION = {j: MotorCalibration(i, 0, 0, 1047, 3047) for j, i in IDS.items()}
CALIBRATION["gripper"] = MotorCalibration(6, 0, 0, 1500, 2500)


@pytest.fixture
def sim(tmp_path):
    with SimBusServer(tmp_path / "ttySIM") as server:
        yield server


def _wait_for(predicate, timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_uncalibrated_follower_speaks_raw_ticks(sim: SimBusServer, tmp_path) -> None:
    with SOFollower(str(sim.link_path), "f", calibration_dir=tmp_path) as arm:
        assert arm.calibration is None and arm.joint_names == JOINTS
        assert arm.read_joints() == dict.fromkeys(JOINTS, 2048.0)
        assert arm.send_goal({"shoulder_pan": 3000.0, "gripper": 5000.0}) == {"shoulder_pan": 3000.0, "gripper": 4095.0}
        _wait_for(lambda: arm.read_joints()["shoulder_pan"] == 3000.0)
        # The follower's servos got LeRobot's SO follower settings.
        assert sim.arm.servos[0].peek("P_Coefficient") == 16 and sim.arm.servos[0].peek("Return_Delay_Time") == 0
    assert not any(s.torque_enabled for s in sim.arm.servos)


def test_calibrated_follower_speaks_degrees_and_percent(sim: SimBusServer, tmp_path) -> None:
    cal.save(CALIBRATION, tmp_path / "f.json")
    with SOFollower(str(sim.link_path), "f", calibration_dir=tmp_path, max_relative_target=10.0) as arm:
        assert sim.arm.servos[5].peek("Min_Position_Limit") == 1500  # calibration written to the servos
        start = arm.read_joints()
        assert start["elbow_flex"] == pytest.approx(360 / 4095)  # tick 2048 is one tick past the 2047 middle
        assert start["gripper"] == pytest.approx(54.8)
        sent = arm.send_goal({"elbow_flex": 45.0, "gripper": 50.0})
        assert sent["elbow_flex"] == pytest.approx(start["elbow_flex"] + 10.0)  # capped at 10 degrees a tick
        assert sent["gripper"] == 50.0
        _wait_for(lambda: sim.arm.servos[5].peek("Goal_Position") == 2000)  # sync writes are not acknowledged
        _wait_for(lambda: abs(arm.read_joints()["elbow_flex"] - sent["elbow_flex"]) < 0.2)
        assert arm.limits()["elbow_flex"] == pytest.approx((-1000 * 360 / 4095, 1000 * 360 / 4095))


def test_a_nan_goal_sends_nothing(sim: SimBusServer, tmp_path) -> None:
    with SOFollower(str(sim.link_path), "f", calibration_dir=tmp_path) as arm:
        arm.send_goal({"wrist_flex": 2100.0})
        _wait_for(lambda: sim.arm.servos[3].peek("Goal_Position") == 2100)
        with pytest.raises(UnsafeGoalError, match="wrist_flex"):
            arm.send_goal({"wrist_flex": float("nan"), "shoulder_pan": 1000.0})
        arm.read_joints()  # a round trip after the refusal: anything sent before it has been served
        assert sim.arm.servos[0].peek("Goal_Position") == 2048  # no joint of the refused goal went out
        assert sim.arm.servos[3].peek("Goal_Position") == 2100


def test_calibration_argument_overrides_the_directory(sim: SimBusServer, tmp_path) -> None:
    arm = SOLeader(str(sim.link_path), "l", calibration_dir=tmp_path, calibration=CALIBRATION)
    with arm:
        assert arm.read_joints()["gripper"] == pytest.approx(54.8)


def test_leader_keeps_torque_off_and_follows_the_hand(tmp_path) -> None:
    with SimBusServer(tmp_path / "ttyL", leader=True) as sim, SOLeader(str(sim.link_path), "l", tmp_path) as arm:
        assert not any(s.torque_enabled for s in sim.arm.servos)
        first = arm.read_joints()
        time.sleep(0.2)
        assert arm.read_joints() != first
        assert not hasattr(arm, "send_goal")


def test_missing_servos_are_named(sim: SimBusServer, tmp_path) -> None:
    sim.arm.servos[5].poke("ID", 9)  # the gripper answers at the wrong id
    sim.arm.servos[2].poke("Model_Number", 1284)
    arm = SOFollower(str(sim.link_path), "f", calibration_dir=tmp_path, timeout_s=0.2, retries=0)
    with pytest.raises(
        ConnectionError, match=r"not answering: \['gripper \(id 6\)'\]; wrong model numbers.*elbow_flex"
    ):
        arm.connect()
    assert not arm.bus.is_open


def test_setup_motor_gives_the_joint_its_id(sim: SimBusServer, tmp_path) -> None:
    for servo in sim.arm.servos[1:]:
        servo.connected = False  # one servo plugged in alone, with a factory id
    sim.arm.servos[0].poke("ID", 1)
    arm = SOFollower(str(sim.link_path), "f", calibration_dir=tmp_path)
    try:
        arm.setup_motor("wrist_flex")
        assert sim.arm.servos[0].id == 4
        with pytest.raises(ValueError, match="unknown joint 'wrist'"):
            arm.setup_motor("wrist")
        arm.setup_motor("elbow_flex", current_id=4)  # at a known id, no scan
        assert sim.arm.servos[0].id == 3
        sim.arm.servos[1].connected = True
        with pytest.raises(
            ValueError, match=r"connect only the gripper servo for set-up; found servos with ids \[2, 3\]"
        ):
            arm.setup_motor("gripper")
    finally:
        arm.bus.close()


def test_constructor_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"model must be one of \['so100', 'so101'\], got 'so102'"):
        SOFollower("/dev/null", "a", tmp_path, model="so102")
    with pytest.raises(ValueError, match="arm_id must be a plain name"):
        SOFollower("/dev/null", "../a", tmp_path)
    with pytest.raises(ValueError, match="max_relative_target must be positive and finite"):
        SOFollower("/dev/null", "a", tmp_path, max_relative_target=0.0)
    with pytest.raises(ValueError, match=r"max_relative_target names unknown joints \['elbow'\]"):
        SOFollower("/dev/null", "a", tmp_path, max_relative_target={"elbow": 5.0})
    default = SOFollower("/dev/null", "a")
    assert default.calibration_file.parts[-2:] == ("so101_follower", "a.json")
