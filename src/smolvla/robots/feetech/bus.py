"""A motors bus for Feetech STS servos over pyserial (or any byte-stream port object).

Our own ~200 lines rather than `feetech-servo-sdk`: the SDK reports failures as integer result codes the
caller must remember to check, keeps module-level port state, and needs its own port handler; here every
failure is an exception that names the servo and the error, and the bus runs over anything with
`read(n)`/`write(b)`/`reset_input_buffer()`, so tests drive it with a fake port or the simulated bus.

A transaction (instruction, then the status packets it asks for) is retried `retries` times when a status
packet is missing or corrupt; a servo that answers with an error bit set (overload, overheat ...) raises
`ServoStatusError` at once. Register values cross this API decoded (signed where the register is
sign-magnitude), by register name from the control table.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

from smolvla.robots.feetech import protocol as proto
from smolvla.robots.feetech.control_table import BAUDRATES, DEFAULT_BAUDRATE, register
from smolvla.robots.feetech.encoding import decode_sign_magnitude, encode_sign_magnitude, from_bytes, to_bytes

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 0.1  # a servo answers within ~0.5 ms at 1 Mbaud; 100 ms covers USB latency and a busy host


class Port(Protocol):
    def read(self, size: int) -> bytes: ...

    def write(self, data: bytes) -> Any: ...

    def reset_input_buffer(self) -> None: ...


def open_serial(path: str, baudrate: int = DEFAULT_BAUDRATE, timeout_s: float = DEFAULT_TIMEOUT_S) -> Port:
    """A pyserial port at `path`; the one place that imports pyserial (the `robots` extra)."""
    try:
        import serial
    except ImportError:
        raise ImportError("the servo bus needs pyserial: pip install 'smolvla[robots]'") from None
    try:
        # A write timeout too: a stalled USB adapter must raise (and be retried), not block the control loop.
        return serial.Serial(path, baudrate, timeout=timeout_s, write_timeout=timeout_s)
    except serial.SerialException as e:
        raise ConnectionError(f"cannot open serial port {path!r}: {e}") from e


class FeetechBus:
    """Servos by name on one bus: `motors` maps joint name -> servo id."""

    def __init__(
        self,
        port: str | Port,
        motors: dict[str, int],
        *,
        baudrate: int = DEFAULT_BAUDRATE,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = 3,
    ) -> None:
        if len(set(motors.values())) != len(motors):
            raise ValueError(f"servo ids must be distinct, got {motors}")
        self.motors = dict(motors)
        self._port_spec, self.baudrate, self.timeout_s, self.retries = port, baudrate, timeout_s, retries
        self._port: Port | None = None
        self._owns_port = isinstance(port, str)
        # The control loop and a watchdog thread may share the bus; one transaction at a time.
        self._lock = threading.RLock()

    # -- connection -------------------------------------------------------------------------------------
    def open(self) -> None:
        if self._port is None:
            spec = self._port_spec
            self._port = open_serial(spec, self.baudrate, self.timeout_s) if isinstance(spec, str) else spec

    def close(self) -> None:
        if self._port is not None and self._owns_port:
            self._port.close()
        self._port = None

    @property
    def is_open(self) -> bool:
        return self._port is not None

    # -- single servo -----------------------------------------------------------------------------------
    def ping(self, servo_id: int) -> int:
        """Model number of servo `servo_id` (777 for an STS3215); raises NoResponseError if it is absent."""
        self._transact(proto.ping(servo_id), [servo_id])
        return self.read_id(servo_id, "Model_Number")

    def read(self, name: str, motor: str) -> int:
        return self.read_id(self._id(motor), name)

    def read_id(self, servo_id: int, name: str) -> int:
        reg = register(name)
        (params,) = self._transact(proto.read(servo_id, reg.address, reg.size), [servo_id])
        return self._decode(name, params, reg.size, servo_id)

    def write(self, name: str, motor: str, value: int) -> None:
        self.write_id(self._id(motor), name, value)

    def write_id(self, servo_id: int, name: str, value: int) -> None:
        reg = register(name)
        if reg.read_only:
            raise ValueError(f"register {name} is read-only")
        self._transact(proto.write(servo_id, reg.address, self._encode(name, value)), [servo_id])

    # -- several servos ---------------------------------------------------------------------------------
    def sync_read(self, name: str, motors: list[str] | None = None) -> dict[str, int]:
        """One register from several servos in one instruction: joint name -> decoded value."""
        names = list(self.motors) if motors is None else motors
        ids = [self._id(m) for m in names]
        reg = register(name)
        answers = self._transact(proto.sync_read(ids, reg.address, reg.size), ids)
        return {m: self._decode(name, p, reg.size, i) for m, p, i in zip(names, answers, ids, strict=True)}

    def sync_write(self, name: str, values: dict[str, int]) -> None:
        """One register on several servos in one instruction (no status packets come back)."""
        reg = register(name)
        data = {self._id(m): self._encode(name, v) for m, v in values.items()}
        self._transact(proto.sync_write(reg.address, reg.size, data), [])

    def torque(self, enabled: bool, motors: list[str] | None = None) -> None:
        """Torque on or off; off also unlocks EEPROM (Lock 0) so limits and offsets can be written.

        One broadcast packet first, so every servo gets the command even if one of them stops answering;
        then each servo is written and acknowledged, and those that fail are named together at the end.
        """
        names = list(self.motors) if motors is None else motors
        self.sync_write("Torque_Enable", dict.fromkeys(names, int(enabled)))
        failed = {}
        for m in names:
            try:
                self.write("Torque_Enable", m, int(enabled))
                self.write("Lock", m, int(enabled))
            except proto.FeetechError as e:
                failed[m] = str(e)
        if failed:
            raise proto.FeetechError(f"torque {'on' if enabled else 'off'} not confirmed by {failed}")

    def broadcast_ping(self) -> list[int]:
        """Ids of every servo that answers a ping to the broadcast id (corrupt answers are skipped)."""
        if self._port is None:
            raise ConnectionError("the bus is not open; call open() first")
        ids = []
        with self._lock:
            self._port.reset_input_buffer()
            self._port.write(proto.ping(proto.BROADCAST_ID))
            while True:
                try:
                    packet, _ = proto.find_packet(self._read_frame(proto.BROADCAST_ID))
                except proto.NoResponseError:
                    return sorted(ids)
                if packet is not None:
                    ids.append(packet.servo_id)

    def find_servos(self) -> tuple[int, list[int]]:
        """(baud rate, ids) of the servos on the bus, trying every STS baud rate from the fastest.

        A port without a settable `baudrate` (a fake, a pty) is only tried at its own rate.
        """
        self.open()
        rates = sorted(BAUDRATES.values(), reverse=True) if hasattr(self._port, "baudrate") else [self.baudrate]
        for rate in rates:
            self.use_baudrate(rate)
            ids = self.broadcast_ping()
            if ids:
                return rate, ids
        raise proto.NoResponseError(f"no servo answered a broadcast ping at any of {rates} baud")

    def use_baudrate(self, baudrate: int) -> None:
        """Talk at `baudrate` from now on (where the port's rate can be set)."""
        self.baudrate = baudrate
        if hasattr(self._port, "baudrate"):
            self._port.baudrate = baudrate

    def set_id(self, old_id: int, new_id: int) -> None:
        """Give the servo answering at `old_id` the id `new_id` (EEPROM; connect one servo at a time)."""
        if not 0 <= new_id <= proto.MAX_ID:
            raise ValueError(f"servo id must be in [0, {proto.MAX_ID}], got {new_id}")
        self.write_id(old_id, "Torque_Enable", 0)
        self.write_id(old_id, "Lock", 0)
        self.write_id(old_id, "ID", new_id)
        self.ping(new_id)

    def set_baudrate(self, servo_id: int, baudrate: int) -> None:
        """Store a new baud rate in the servo; it answers at that rate from the next packet on."""
        codes = {bps: code for code, bps in BAUDRATES.items()}
        if baudrate not in codes:
            raise ValueError(f"baud rate must be one of {sorted(codes)}, got {baudrate}")
        self.write_id(servo_id, "Lock", 0)
        self.write_id(servo_id, "Baud_Rate", codes[baudrate])

    # -- plumbing ---------------------------------------------------------------------------------------
    def _id(self, motor: str) -> int:
        try:
            return self.motors[motor]
        except KeyError:
            raise ValueError(f"unknown motor {motor!r}; this bus has {list(self.motors)}") from None

    def _encode(self, name: str, value: int) -> bytes:
        reg = register(name)
        try:
            raw = encode_sign_magnitude(int(value), reg.sign_bit) if reg.sign_bit is not None else int(value)
            return to_bytes(raw, reg.size)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None

    @staticmethod
    def _decode(name: str, params: bytes, size: int, servo_id: int) -> int:
        if len(params) != size:
            raise proto.CorruptPacketError(f"servo {servo_id} sent {len(params)} bytes for {name}, expected {size}")
        raw = from_bytes(params)
        sign_bit = register(name).sign_bit
        return decode_sign_magnitude(raw, sign_bit) if sign_bit is not None else raw

    def _transact(self, packet: bytes, answer_ids: list[int]) -> list[bytes]:
        """Send `packet`, read one status packet from each of `answer_ids` in order; retry on comm errors."""
        if self._port is None:
            raise ConnectionError("the bus is not open; call open() (or connect() on the arm) first")
        with self._lock:
            for attempt in range(self.retries + 1):
                try:
                    try:
                        self._port.reset_input_buffer()
                        self._port.write(packet)
                        return [proto.parse_status(self._read_frame(i), i) for i in answer_ids]
                    except OSError as e:  # pyserial's errors (unplugged adapter, write timeout) are OSErrors
                        raise proto.CommunicationError(f"serial port error: {e}") from e
                except proto.CommunicationError as e:
                    if attempt == self.retries:
                        raise
                    log.warning("bus: %s; retrying (%d/%d)", e, attempt + 1, self.retries)
        raise AssertionError("unreachable")

    def _read_frame(self, servo_id: int) -> bytes:
        """Bytes of the next frame on the wire (header to checksum), skipping noise before its header."""
        assert self._port is not None
        deadline = time.monotonic() + self.timeout_s
        buf = bytearray()
        while True:
            start = buf.find(proto.HEADER)
            # Three FFs: the frame starts at the last two (0xFF is never an id).
            while start >= 0 and len(buf) > start + 2 and buf[start + 2] == 0xFF:
                start = buf.find(proto.HEADER, start + 1)
            if start >= 0 and len(buf) >= start + 4 and len(buf) >= start + 4 + buf[start + 3]:
                return bytes(buf[start : start + 4 + buf[start + 3]])
            need = 4 if start < 0 or len(buf) < start + 4 else start + 4 + buf[start + 3] - len(buf)
            chunk = self._port.read(max(1, need))
            if chunk:
                buf += chunk
            elif time.monotonic() >= deadline:
                got = f"partial bytes {bytes(buf).hex(' ')}" if buf else "nothing"
                raise proto.NoResponseError(f"no status packet from servo {servo_id} within {self.timeout_s}s ({got})")
