"""`smolvla robot ...` on the simulated servo bus: read, move, teleop, find-port; torch-free; one-line errors."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("serial")

from smolvla.cli.main import app  # noqa: E402
from smolvla.robots.sim_bus import SimBusServer  # noqa: E402
from smolvla.robots.so_arm import JOINTS  # noqa: E402

runner = CliRunner()
# A robot computer has no torch: block it, then run the CLI as the console script would.
TORCH_BLOCKED_CLI = (
    "import sys\nsys.modules['torch'] = None\nfrom smolvla.cli.main import app\n"
    "sys.argv = ['smolvla'] + sys.argv[1:]\napp()\n"
)
ROBOT_COMMANDS = ("find-port", "calibrate", "setup-motors", "release", "read", "move", "teleop", "sim-bus")
COMMANDS = [["robot", c] for c in ROBOT_COMMANDS]
COMMANDS += [[c] for c in ("record", "replay", "deploy", "viz")]


@pytest.fixture
def follower(tmp_path):
    with SimBusServer(tmp_path / "follower") as server:
        yield server


@pytest.fixture
def leader(tmp_path):
    with SimBusServer(tmp_path / "leader", leader=True) as server:
        yield server


def _json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command):
    result = runner.invoke(app, [*command, "--help"], prog_name="smolvla")
    assert result.exit_code == 0, result.output
    assert "Usage: smolvla " + " ".join(command) in result.output


def test_read_and_move_on_the_simulated_bus(follower):
    port = str(follower.link_path)
    result = runner.invoke(app, ["robot", "read", "--port", port])
    assert result.exit_code == 0, result.output
    joints = json.loads(result.output)
    assert list(joints) == ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
    assert all(v == 2048.0 for v in joints.values())  # the simulated servos start mid-turn
    assert not any(s.torque_enabled for s in follower.arm.servos)  # read is passive
    goal = {"shoulder_pan": 2300, "gripper": 1800}
    result = runner.invoke(app, ["robot", "move", "--port", port, "--goal", json.dumps(goal), "--raw"])
    assert result.exit_code == 0, result.output
    final = json.loads(result.output)
    assert abs(final["shoulder_pan"] - 2300) <= 20 and abs(final["gripper"] - 1800) <= 20
    assert not any(s.torque_enabled for s in follower.arm.servos)  # released on exit
    again = json.loads(runner.invoke(app, ["robot", "read", "--port", port]).output)
    assert abs(again["shoulder_pan"] - 2300) <= 20


def test_move_errors_are_one_line(follower, tmp_path):
    port = str(follower.link_path)
    cases = [
        (["--goal", "{bad", "--raw"], "--goal is not JSON"),
        (["--goal", '{"elbow": 1}', "--raw"], "--goal names unknown joints ['elbow']"),
        (["--goal", '{"gripper": 1}', "--calibration-dir", str(tmp_path)], "no calibration at"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["robot", "move", "--port", port, *args])
        assert result.exit_code == 1
        assert result.stderr.strip().startswith("error: ") and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    follower.drop_next = 100  # the servos stop answering: a named bus error, not a crash
    result = runner.invoke(app, ["robot", "read", "--port", port])
    assert result.exit_code == 1 and result.stderr.startswith("error: no status packet from servo 1")
    assert "unexpected" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    follower.drop_next = 0
    result = runner.invoke(app, ["robot", "read", "--port", str(tmp_path / "no-such-port")])
    assert result.exit_code == 1 and "no-such-port" in result.stderr and "Traceback" not in result.output


def test_teleop_follows_the_leader_at_30_hz_or_more(follower, leader):
    args = ["robot", "teleop", "--leader-port", str(leader.link_path), "--follower-port", str(follower.link_path)]
    live = follower.link_path.with_name("teleop.rrd")  # the rerun preview, recorded (no viewer in a test)
    viz = ["--viz-save", str(live)] if importlib.util.find_spec("rerun") else []
    args += ["--fps", "60", "--seconds", "1", "--camera", "top=fake:32x24@30", *viz]
    # Its own process (torch blocked), as on a robot: the simulated servos' threads here do not share its GIL.
    result = subprocess.run([sys.executable, "-c", TORCH_BLOCKED_CLI, *args], capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = _json_lines(result.stdout)[-1]
    assert summary["hz"] >= 30, summary
    assert summary["camera_fps"]["top"] > 15
    assert not viz or live.stat().st_size > 10_000
    # The follower's last goals are one pose of the scripted leader (raw ticks, uncalibrated arms): joint i of
    # the leader is at 2048 + 300 sin(phase + i), so some phase must explain all six goals at once.
    goals = np.array([s.peek("Goal_Position") for s in follower.arm.servos], dtype=np.float64)
    script = leader.arm.joints
    first = np.arcsin(np.clip((goals[0] - 2048) / script.amplitude, -1, 1))
    fits = [
        np.abs(2048 + script.amplitude * np.sin(phase + np.arange(6)) - goals).max() for phase in (first, np.pi - first)
    ]
    assert min(fits) < 25, (goals, fits)


def test_calibration_import_then_calibrated_read(follower, tmp_path):
    port = str(follower.link_path)
    # A LeRobot calibration file: homing offsets and ranges per joint (the format is the same as ours).
    lerobot = {j: {"id": i + 1, "drive_mode": 0, "homing_offset": 10 * i, "range_min": 1000, "range_max": 3000}
               for i, j in enumerate(JOINTS)}  # fmt: skip
    source = tmp_path / "lerobot.json"
    source.write_text(json.dumps(lerobot))
    cal_dir = tmp_path / "cal"
    args = ["robot", "calibrate", "--port", port, "--id", "arm1", "--calibration-dir", str(cal_dir)]
    result = runner.invoke(app, [*args, "--import-lerobot", str(source)])
    assert result.exit_code == 0, result.output
    assert json.loads((cal_dir / "arm1.json").read_text()) == lerobot
    # Before the arm was connected with it, the servos do not apply the file's offsets: refused, named.
    read = ["robot", "read", "--port", port, "--calibration", str(cal_dir / "arm1.json")]
    result = runner.invoke(app, read)
    assert result.exit_code == 1 and "the servos hold other homing offsets" in result.stderr
    goal = json.dumps({"shoulder_pan": 10.0, "gripper": 50.0})
    result = runner.invoke(app, ["robot", "move", "--port", port, "--id", "arm1", "--calibration-dir", str(cal_dir),
                                 "--goal", goal])  # fmt: skip
    assert result.exit_code == 0, result.output
    joints = json.loads(runner.invoke(app, read).output)
    assert abs(joints["shoulder_pan"] - 10.0) < 2 and abs(joints["gripper"] - 50.0) < 2  # degrees, 0-100


def test_release_and_setup_motors(follower):
    port = str(follower.link_path)
    for servo in follower.arm.servos:
        servo.poke("Torque_Enable", 1)
    result = runner.invoke(app, ["robot", "release", "--port", port])
    assert result.exit_code == 0, result.stderr
    assert not any(s.torque_enabled for s in follower.arm.servos)
    # Set-up wants one servo on the bus; the simulated arm has six: refused with the ids found.
    result = runner.invoke(app, ["robot", "setup-motors", "--port", port], input="\n")
    assert result.exit_code == 1
    assert "connect only the gripper servo for set-up; found servos with ids [1, 2, 3, 4, 5, 6]" in result.stderr


def test_find_port_lists_ports():
    result = runner.invoke(app, ["robot", "find-port", "--list"])
    assert result.exit_code == 0 and isinstance(json.loads(result.output), list)


def test_robot_commands_run_with_torch_blocked(follower):
    for args in (["robot", "--help"], ["deploy", "--help"], ["robot", "read", "--port", str(follower.link_path)]):
        command = [sys.executable, "-c", TORCH_BLOCKED_CLI, *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    assert list(json.loads(result.stdout))[0] == "shoulder_pan"


def test_robot_modules_import_without_torch():
    modules = ["smolvla.robots.cameras", "smolvla.robots.cameras_spec", "smolvla.robots.deploy",
               "smolvla.robots.replay", "smolvla.robots.arm_io", "smolvla.robots.record",
               "smolvla.robots.record_saver", "smolvla.robots.viz", "smolvla.cli.robot"]  # fmt: skip
    code = f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\nprint('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stderr


def test_sim_bus_command_serves_until_terminated(tmp_path):
    link = tmp_path / "so101"
    proc = subprocess.Popen([sys.executable, "-c", TORCH_BLOCKED_CLI, "robot", "sim-bus", "--link", str(link)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == str(link)  # the ready line
        result = runner.invoke(app, ["robot", "read", "--port", str(link)])
        assert result.exit_code == 0 and json.loads(result.output)["gripper"] == 2048.0
        proc.terminate()
        assert proc.wait(10) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not link.exists()  # the symlink goes with the bus
