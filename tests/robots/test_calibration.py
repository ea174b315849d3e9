"""Calibration maths (LeRobot's SO follower units), the JSON file, LeRobot import, and calibrating on the sim."""

from __future__ import annotations

import json
import threading
import time

import pytest

from smolvla.robots import calibration as cal
from smolvla.robots.calibration import MotorCalibration, NormMode
from smolvla.robots.feetech.protocol import NoResponseError
from smolvla.robots.sim_bus import SimBusServer
from smolvla.robots.so_arm import IDS, SOFollower

ARM = MotorCalibration(id=2, drive_mode=0, homing_offset=-120, range_min=1000, range_max=3000)
GRIPPER = MotorCalibration(id=6, drive_mode=0, homing_offset=35, range_min=2000, range_max=3000)


def test_degrees_by_hand() -> None:
    # mid = 2000; 4095 ticks per 360 degrees
    assert cal.to_units(2000, ARM, NormMode.DEGREES) == 0.0
    assert cal.to_units(3000, ARM, NormMode.DEGREES) == pytest.approx(1000 * 360 / 4095)
    assert cal.to_units(1000, ARM, NormMode.DEGREES) == pytest.approx(-87.9121, abs=1e-4)
    assert cal.to_ticks(90.0, ARM, NormMode.DEGREES) == round(2000 + 4095 / 4)  # 3023.75 -> 3024
    assert cal.unit_limits(ARM, NormMode.DEGREES) == pytest.approx((-87.9121, 87.9121), abs=1e-4)


def test_gripper_percent_by_hand() -> None:
    assert cal.to_units(2500, GRIPPER, NormMode.RANGE_0_100) == 50.0
    assert cal.to_units(1500, GRIPPER, NormMode.RANGE_0_100) == 0.0  # clipped into the range first
    assert cal.to_ticks(25.0, GRIPPER, NormMode.RANGE_0_100) == 2250
    assert cal.to_ticks(130.0, GRIPPER, NormMode.RANGE_0_100) == 3000
    inverted = MotorCalibration(6, 1, 0, 2000, 3000)
    assert cal.to_units(2250, inverted, NormMode.RANGE_0_100) == 75.0
    assert cal.to_ticks(75.0, inverted, NormMode.RANGE_0_100) == 2250


@pytest.mark.parametrize("mode", list(NormMode))
def test_ticks_round_trip(mode: NormMode) -> None:
    motor = GRIPPER if mode is NormMode.RANGE_0_100 else ARM
    for ticks in range(motor.range_min, motor.range_max + 1, 7):
        assert cal.to_ticks(cal.to_units(ticks, motor, mode), motor, mode) == ticks


def test_non_finite_values_never_become_ticks() -> None:
    with pytest.raises(ValueError, match="cannot convert non-finite value nan"):
        cal.to_ticks(float("nan"), ARM, NormMode.DEGREES)


def test_half_turn_homing_and_recording() -> None:
    assert cal.half_turn_homing(2500) == 453  # 2500 - 453 = 2047
    got = cal.from_recording({"a": 1, "b": 2}, {"a": 453, "b": 0}, {"a": 900, "b": 10}, {"a": 3100, "b": 20})
    assert got == {"a": MotorCalibration(1, 0, 453, 900, 3100), "b": MotorCalibration(2, 0, 0, 10, 20)}
    with pytest.raises(ValueError, match=r"joints \['b'\] did not move while recording"):
        cal.from_recording({"a": 1, "b": 2}, {"a": 0, "b": 0}, {"a": 900, "b": 10}, {"a": 3100, "b": 10})


def test_invalid_calibrations_are_refused() -> None:
    with pytest.raises(ValueError, match="need 0 <= range_min < range_max <= 4095, got 3000, 1000"):
        MotorCalibration(1, 0, 0, 3000, 1000)
    with pytest.raises(ValueError, match="homing_offset must be within"):
        MotorCalibration(1, 0, 2048, 0, 4095)


def _lerobot_file(path, **override) -> dict:
    # The shape LeRobot writes for an SO-101 follower (`<calibration dir>/<id>.json`).
    data = {
        joint: {"id": servo_id, "drive_mode": 0, "homing_offset": 100 * servo_id - 300,
                "range_min": 800 + servo_id, "range_max": 3200 - servo_id}
        for joint, servo_id in IDS.items()
    }  # fmt: skip
    data["wrist_roll"].update(range_min=0, range_max=4095)
    data.update(override)
    path.write_text(json.dumps(data, indent=4))
    return data


def test_import_a_lerobot_calibration(tmp_path) -> None:
    src = tmp_path / "lerobot" / "my_arm.json"
    src.parent.mkdir()
    data = _lerobot_file(src)
    dest = cal.import_lerobot(src, tmp_path / "ours" / "my_arm.json", IDS)
    assert json.loads(dest.read_text()) == data  # the same format, byte-compatible both ways
    loaded = cal.load(dest, IDS)
    assert loaded["elbow_flex"] == MotorCalibration(3, 0, 0, 803, 3197)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"gripper": {"id": 6, "drive_mode": 0, "homing_offset": 0, "range_min": 5}}, "gripper: expected fields"),
        ({"gripper": {"id": 6, "drive_mode": 0, "homing_offset": 0.5, "range_min": 5, "range_max": 9}},
         r"gripper: fields \['homing_offset'\] must be integers"),
        ({"gripper": {"id": 7, "drive_mode": 0, "homing_offset": 0, "range_min": 5, "range_max": 9}},
         "gripper: expected servo id 6, got 7"),
        ({"gripper": {"id": 6, "drive_mode": 0, "homing_offset": 0, "range_min": 9, "range_max": 5}},
         "gripper: need 0 <= range_min < range_max"),
        ({"elbow": {}}, "expected joints"),
    ],
)  # fmt: skip
def test_bad_calibration_files_name_the_file_and_joint(tmp_path, override, message) -> None:
    path = tmp_path / "arm.json"
    _lerobot_file(path, **override)
    with pytest.raises(ValueError, match=message) as info:
        cal.load(path, IDS)
    assert str(path) in str(info.value)


def test_missing_and_non_json_files(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no calibration file at"):
        cal.load(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json: not JSON"):
        cal.load(tmp_path / "bad.json")


def test_calibrate_interactive_on_the_sim(tmp_path) -> None:
    """Homing at the middle, then ranges recorded while a 'hand' moves the joints; saved and applied."""
    with SimBusServer(tmp_path / "ttySIM") as sim:
        for servo_id in IDS.values():
            sim.arm.move_by_hand(servo_id, 2600)  # the arm's middle is at 2600 actual ticks
        prompts = []

        def hand(prompt: str) -> None:
            prompts.append(prompt)
            if len(prompts) == 2:  # the range-recording prompt: swing every joint +-500 ticks around the middle
                for ticks in (2100, 3100, 2600):
                    for servo_id in IDS.values():
                        sim.arm.move_by_hand(servo_id, ticks)
                    time.sleep(0.1)

        arm = SOFollower(str(sim.link_path), "test_arm", calibration_dir=tmp_path / "cal")
        arm.connect()
        try:
            got = arm.calibrate_interactive(input_fn=hand, poll_s=0.005)
            assert "middle of its range" in prompts[0] and "entire ranges of motion" in prompts[1]
            assert got["elbow_flex"] == MotorCalibration(3, 0, 2600 - 2047, 1547, 2547)
            assert got["wrist_roll"] == MotorCalibration(5, 0, 553, 0, 4095)
            assert cal.load(tmp_path / "cal" / "test_arm.json", IDS) == got
            assert sim.arm.servos[2].peek("Homing_Offset") == 553
            assert sim.arm.servos[2].peek("Min_Position_Limit") == 1547
            joints = arm.read_joints()
            assert joints["elbow_flex"] == pytest.approx(0.0, abs=0.1)  # the middle reads 0 degrees
            assert joints["gripper"] == pytest.approx(50.0, abs=0.1)
        finally:
            arm.disconnect()
        # A new arm object picks the saved calibration up and writes nothing new.
        again = SOFollower(str(sim.link_path), "test_arm", calibration_dir=tmp_path / "cal")
        assert again.calibration == got


def test_recording_stops_when_the_bus_fails(tmp_path) -> None:
    with SimBusServer(tmp_path / "ttySIM") as sim:
        arm = SOFollower(str(sim.link_path), "a", calibration_dir=tmp_path, retries=0, timeout_s=0.02)
        arm.connect()
        stopped = threading.Event()

        def hand(prompt: str) -> None:
            if "entire ranges" in prompt:
                sim.drop_next = 10**6  # the servos go silent
                time.sleep(0.2)
                stopped.set()

        try:
            with pytest.raises(NoResponseError, match="no status packet"):
                arm.calibrate_interactive(input_fn=hand, poll_s=0.005)
            assert stopped.is_set()
            assert not (tmp_path / "a.json").exists()
        finally:
            sim.drop_next = 0
            arm.disconnect()
