"""The motors bus: retries on corrupt or missing status packets, servo errors by name, register I/O."""

from __future__ import annotations

import logging
import time

import pytest

from smolvla.robots.feetech import protocol as proto
from smolvla.robots.feetech.bus import FeetechBus
from smolvla.robots.sim_bus import SimBusServer
from smolvla.robots.sim_servo import KinematicJoints, SimArm, SimServo


class FakePort:
    """A port whose answers come from simulated servos; `faults` says what happens to each transaction's
    reply ("corrupt", "drop", "ok") until the list runs out."""

    def __init__(self, faults: list[str] | None = None, error: int = 0) -> None:
        self.servo = SimServo(1)
        self.servo.error = error
        self.faults = list(faults or [])
        self.writes: list[bytes] = []
        self._out = b""

    def write(self, data: bytes) -> int:
        self.writes.append(bytes(data))
        packet, _ = proto.find_packet(data)
        reply = proto.build_packet(1, self.servo.error, self.servo.read(packet.params[0], packet.params[1]))
        fault = self.faults.pop(0) if self.faults else "ok"
        if fault == "corrupt":
            reply = reply[:-1] + bytes([reply[-1] ^ 0x55])
        self._out = b"" if fault == "drop" else reply
        return len(data)

    def read(self, size: int) -> bytes:
        out, self._out = self._out[:size], self._out[size:]
        return out

    def reset_input_buffer(self) -> None:
        self._out = b""


def _bus(port, retries: int = 3) -> FeetechBus:
    bus = FeetechBus(port, {"shoulder_pan": 1}, timeout_s=0.01, retries=retries)
    bus.open()
    return bus


def test_a_corrupt_status_packet_is_retried(caplog) -> None:
    port = FakePort(["corrupt"])
    with caplog.at_level(logging.WARNING):
        assert _bus(port).read("Model_Number", "shoulder_pan") == 777
    assert len(port.writes) == 2  # the read went out twice
    assert "fails its length or checksum" in caplog.text and "retrying (1/3)" in caplog.text


def test_a_missing_status_packet_is_retried() -> None:
    port = FakePort(["drop", "drop"])
    assert _bus(port).read("Model_Number", "shoulder_pan") == 777
    assert len(port.writes) == 3


def test_retries_run_out() -> None:
    port = FakePort(["drop"] * 5)
    with pytest.raises(proto.NoResponseError, match="no status packet from servo 1 within 0.01s"):
        _bus(port, retries=2).read("Model_Number", "shoulder_pan")
    assert len(port.writes) == 3


def test_serial_port_errors_are_retried_then_named() -> None:
    port = FakePort()
    real_write, calls = port.write, []

    def flaky_write(data: bytes) -> int:
        calls.append(data)
        if len(calls) == 1:
            raise OSError(5, "Input/output error")  # what pyserial raises when the adapter hiccups
        return real_write(data)

    port.write = flaky_write
    assert _bus(port).read("Model_Number", "shoulder_pan") == 777

    def unplugged(data: bytes) -> int:
        raise OSError(19, "No such device")

    port.write = unplugged
    with pytest.raises(proto.CommunicationError, match=r"serial port error: \[Errno 19\] No such device"):
        _bus(port, retries=1).read("Model_Number", "shoulder_pan")


def test_a_servo_error_is_raised_by_name_without_retry() -> None:
    port = FakePort(error=0x20)
    with pytest.raises(proto.ServoStatusError, match="servo 1 reports overload error"):
        _bus(port).read("Present_Position", "shoulder_pan")
    assert len(port.writes) == 1


def test_register_errors_name_the_problem() -> None:
    bus = _bus(FakePort())
    with pytest.raises(ValueError, match="unknown motor 'elbow'; this bus has"):
        bus.read("Present_Position", "elbow")
    with pytest.raises(ValueError, match="register Present_Position is read-only"):
        bus.write("Present_Position", "shoulder_pan", 0)
    with pytest.raises(ValueError, match="Goal_Position:.*does not fit below sign bit 15"):
        bus.write("Goal_Position", "shoulder_pan", 40000)
    with pytest.raises(ValueError, match="baud rate must be one of"):
        bus.set_baudrate(1, 9600)


def test_the_bus_must_be_open() -> None:
    bus = FeetechBus(FakePort(), {"shoulder_pan": 1})
    with pytest.raises(ConnectionError, match="the bus is not open"):
        bus.ping(1)


def test_a_missing_device_is_a_connection_error(tmp_path) -> None:
    bus = FeetechBus(str(tmp_path / "ttyNONE"), {"shoulder_pan": 1})
    with pytest.raises(ConnectionError, match="cannot open serial port"):
        bus.open()


# -- over a real pseudo-terminal, against the simulated servos -------------------------------------------


@pytest.fixture
def sim(tmp_path):
    with SimBusServer(tmp_path / "ttySIM") as server:
        yield server


def _sim_bus(sim: SimBusServer) -> FeetechBus:
    bus = FeetechBus(str(sim.link_path), {f"j{i}": i for i in range(1, 7)})
    bus.open()
    return bus


def test_sync_read_and_sync_write_on_a_pty(sim: SimBusServer) -> None:
    bus = _sim_bus(sim)
    try:
        assert bus.sync_read("Present_Position") == {f"j{i}": 2048 for i in range(1, 7)}
        bus.torque(True)
        bus.sync_write("Goal_Position", {"j1": 1000, "j3": 3000})
        assert bus.sync_read("Goal_Position", ["j1", "j3", "j5"]) == {"j1": 1000, "j3": 3000, "j5": 2048}
        deadline = time.monotonic() + 2
        while bus.sync_read("Present_Position", ["j1", "j3"]) != {"j1": 1000, "j3": 3000}:
            assert time.monotonic() < deadline, "the simulated joints never reached their goals"
            time.sleep(0.02)
    finally:
        bus.close()


def test_a_corrupt_packet_on_the_wire_is_retried(sim: SimBusServer) -> None:
    bus = _sim_bus(sim)
    try:
        sim.corrupt_next = 1  # the first servo's answer to the sync read
        assert bus.sync_read("Model_Number") == {f"j{i}": 777 for i in range(1, 7)}
        sim.drop_next = 1
        assert bus.ping(4) == 777
    finally:
        bus.close()


def test_signed_registers_cross_the_wire(sim: SimBusServer) -> None:
    bus = _sim_bus(sim)
    try:
        bus.torque(False)
        bus.write("Homing_Offset", "j2", -100)
        assert bus.read("Homing_Offset", "j2") == -100
        assert sim.arm.servos[1].read(31, 2) == bytes([100, 0x08])  # magnitude 100 with bit 11 set
        # The servo reports actual - offset: 2048 - (-100).
        assert bus.read("Present_Position", "j2") == 2148
    finally:
        bus.close()


def test_set_id_and_baudrate(sim: SimBusServer) -> None:
    bus = _sim_bus(sim)
    try:
        bus.set_id(6, 12)
        assert bus.ping(12) == 777
        assert sim.arm.by_id(6) is None and sim.arm.by_id(12) is not None
        bus.set_baudrate(12, 500_000)
        assert sim.arm.by_id(12).peek("Baud_Rate") == 1
        with pytest.raises(proto.NoResponseError, match="servo 6"):
            bus.ping(6)
    finally:
        bus.close()


def test_torque_on_holds_the_present_position() -> None:
    # Switching torque on must not send the joint to a stale goal register.
    arm = SimArm(KinematicJoints(6))
    arm.move_by_hand(1, 1500)
    arm.servos[0].write(40, b"\x01")
    assert arm.servos[0].peek("Goal_Position") == 1500


class SlowServoPort:
    """One servo, id 7, that only understands 115200 baud (pyserial-like: `baudrate` can be set)."""

    def __init__(self) -> None:
        self.baudrate = 1_000_000
        self.tried: list[int] = []
        self._out = b""

    def write(self, data: bytes) -> int:
        self.tried.append(self.baudrate)
        self._out = proto.build_packet(7, 0) if self.baudrate == 115_200 else b""
        return len(data)

    def read(self, size: int) -> bytes:
        out, self._out = self._out[:size], self._out[size:]
        return out

    def reset_input_buffer(self) -> None:
        self._out = b""


def test_find_servos_scans_the_baud_rates() -> None:
    port = SlowServoPort()
    bus = FeetechBus(port, {}, timeout_s=0.005)
    assert bus.find_servos() == (115_200, [7])
    assert port.tried == [1_000_000, 500_000, 250_000, 128_000, 115_200]  # fastest first, stops when found
    port.baudrate = 0  # nobody answers anywhere
    port.write = lambda data: len(data)
    with pytest.raises(proto.NoResponseError, match="no servo answered a broadcast ping at any of"):
        bus.find_servos()
