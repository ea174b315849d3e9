"""The Feetech STS/SCS serial protocol (protocol 0, as spoken by the STS3215): packets, checksum, status errors.

Instruction packet (host -> servo) and status packet (servo -> host) share one frame::

    FF FF | ID | LEN | INSTR or ERROR | PARAM_1 ... PARAM_N | CHK
    LEN = N + 2 (the instruction/error byte and the checksum)
    CHK = ~(ID + LEN + INSTR/ERROR + sum(PARAMS)) & 0xFF

Multi-byte values are little-endian on the STS series. ID 0xFE is the broadcast id (sync read/write, ping
all). Pure functions of bytes: no I/O here, so the bus, the simulated bus and the tests share them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

HEADER = b"\xff\xff"
BROADCAST_ID = 0xFE
MAX_ID = 0xFC
# Header, id, length, instruction/error, checksum: a packet with no parameters.
MIN_PACKET_LEN = 6


class Instruction(IntEnum):
    PING = 0x01
    READ = 0x02
    WRITE = 0x03
    REG_WRITE = 0x04
    ACTION = 0x05
    SYNC_READ = 0x82
    SYNC_WRITE = 0x83


# Status-packet error byte, bit -> name (Feetech SCServo SDK: ERRBIT_VOLTAGE .. ERRBIT_OVERLOAD).
STATUS_ERROR_BITS = {
    0x01: "voltage",
    0x02: "angle",
    0x04: "overheat",
    0x08: "overcurrent",
    0x20: "overload",
}


class FeetechError(Exception):
    """Base of every bus error."""


class CommunicationError(FeetechError):
    """No status packet, or one that fails its checksum or framing; worth a retry."""


class NoResponseError(CommunicationError):
    pass


class CorruptPacketError(CommunicationError):
    pass


class ServoStatusError(FeetechError):
    """A servo answered, but its status byte reports a hardware condition (not retried: it will persist)."""

    def __init__(self, servo_id: int, error: int) -> None:
        self.servo_id = servo_id
        self.error = error
        self.names = status_error_names(error)
        super().__init__(f"servo {servo_id} reports {', '.join(self.names)} error (status byte 0x{error:02X})")


def status_error_names(error: int) -> list[str]:
    """Names of the error bits set in a status byte; an undocumented bit is named by its value."""
    names = [name for bit, name in STATUS_ERROR_BITS.items() if error & bit]
    unknown = error & ~sum(STATUS_ERROR_BITS)
    names += [f"bit 0x{1 << i:02X}" for i in range(8) if unknown & (1 << i)]
    return names


def checksum(body: bytes) -> int:
    """Checksum over id, length, instruction/error and parameters (everything between header and checksum)."""
    return ~sum(body) & 0xFF


def build_packet(servo_id: int, instruction_or_error: int, params: bytes = b"") -> bytes:
    """One frame; used for instruction packets (host) and status packets (the simulated servos)."""
    if not 0 <= servo_id <= BROADCAST_ID:
        raise ValueError(f"servo id must be in [0, {BROADCAST_ID}], got {servo_id}")
    if len(params) > 250:
        raise ValueError(f"a packet carries at most 250 parameter bytes, got {len(params)}")
    body = bytes([servo_id, len(params) + 2, instruction_or_error]) + bytes(params)
    return HEADER + body + bytes([checksum(body)])


def ping(servo_id: int) -> bytes:
    return build_packet(servo_id, Instruction.PING)


def read(servo_id: int, address: int, length: int) -> bytes:
    return build_packet(servo_id, Instruction.READ, bytes([address, length]))


def write(servo_id: int, address: int, data: bytes) -> bytes:
    return build_packet(servo_id, Instruction.WRITE, bytes([address]) + data)


def sync_read(servo_ids: list[int], address: int, length: int) -> bytes:
    """Ask every listed servo for `length` bytes at `address`; each answers with its own status packet."""
    return build_packet(BROADCAST_ID, Instruction.SYNC_READ, bytes([address, length, *servo_ids]))


def sync_write(address: int, length: int, data_by_id: dict[int, bytes]) -> bytes:
    """Write `length` bytes at `address` to several servos in one packet; servos do not answer it."""
    params = bytearray([address, length])
    for servo_id, data in data_by_id.items():
        if len(data) != length:
            raise ValueError(f"sync write of {length} bytes got {len(data)} bytes for servo {servo_id}")
        params += bytes([servo_id]) + data
    return build_packet(BROADCAST_ID, Instruction.SYNC_WRITE, bytes(params))


@dataclass(frozen=True)
class Packet:
    """A parsed frame: `code` is the instruction (host packets) or the error byte (status packets)."""

    servo_id: int
    code: int
    params: bytes


def find_packet(buffer: bytes | bytearray) -> tuple[Packet | None, int]:
    """First complete frame in `buffer`: (packet, bytes consumed) or (None, bytes safe to drop).

    Garbage before a header is skipped, and a frame with a bad checksum is consumed as garbage (a real servo
    ignores it; the host's reader raises on it instead, via `parse_status`). Returns (None, n) when more
    bytes are needed: the first n bytes can never start a frame.
    """
    start = 0
    while True:
        start = buffer.find(HEADER, start)
        if start < 0:
            # Keep a trailing 0xFF: it may be the first half of the next header.
            return None, len(buffer) - (1 if buffer.endswith(b"\xff") else 0)
        # Three FFs in a row: the frame starts at the last two (0xFF is never a valid id).
        if len(buffer) > start + 2 and buffer[start + 2] == 0xFF:
            start += 1
            continue
        if len(buffer) < start + 4:
            return None, start
        length = buffer[start + 3]
        end = start + 4 + length
        if length < 2:
            start += 2
            continue
        if len(buffer) < end:
            return None, start
        body = bytes(buffer[start + 2 : end - 1])
        if checksum(body) != buffer[end - 1]:
            start += 2
            continue
        return Packet(body[0], body[2], body[3:]), end


def parse_status(frame: bytes, expected_id: int) -> bytes:
    """Parameters of one complete status frame from `expected_id`; raises on corruption or a servo error."""
    if len(frame) < MIN_PACKET_LEN or frame[:2] != HEADER:
        raise CorruptPacketError(f"status packet must start with FF FF and hold >= 6 bytes, got {frame.hex(' ')}")
    body = frame[2:-1]
    if body[1] != len(body) - 1 or checksum(body) != frame[-1]:
        raise CorruptPacketError(f"status packet fails its length or checksum: {frame.hex(' ')}")
    if body[0] != expected_id:
        raise CorruptPacketError(f"expected a status packet from servo {expected_id}, got one from {body[0]}")
    if body[2]:
        raise ServoStatusError(body[0], body[2])
    return bytes(body[3:])
