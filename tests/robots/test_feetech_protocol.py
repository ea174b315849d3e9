"""Feetech packets against bytes computed by hand from the protocol's frame and checksum rules."""

from __future__ import annotations

import pytest

from smolvla.robots.feetech import protocol as proto


def _hex(data: bytes) -> str:
    return data.hex(" ").upper()


def test_ping_id_1() -> None:
    # FF FF | id 01 | len 02 | PING 01 | ~(01+02+01) = ~04 = FB
    assert _hex(proto.ping(1)) == "FF FF 01 02 01 FB"


def test_read_present_position() -> None:
    # address 56 = 0x38, 2 bytes: ~(01+04+02+38+02) = ~41 = BE
    assert _hex(proto.read(1, 0x38, 2)) == "FF FF 01 04 02 38 02 BE"


def test_write_goal_position_little_endian() -> None:
    # 2048 = 0x0800 -> 00 08; ~(01+05+03+2A+00+08) = ~3B = C4
    assert _hex(proto.write(1, 0x2A, bytes([0x00, 0x08]))) == "FF FF 01 05 03 2A 00 08 C4"


def test_sync_write_two_servos() -> None:
    # FE 0A 83 2A 02 | 01 00 08 | 02 00 04; the sum's low byte is C6, ~C6 = 39
    packet = proto.sync_write(0x2A, 2, {1: bytes([0x00, 0x08]), 2: bytes([0x00, 0x04])})
    assert _hex(packet) == "FF FF FE 0A 83 2A 02 01 00 08 02 00 04 39"


def test_sync_read_three_servos() -> None:
    # FE 07 82 38 02 01 02 03: sum 0x1C7, ~C7 = 38
    assert _hex(proto.sync_read([1, 2, 3], 0x38, 2)) == "FF FF FE 07 82 38 02 01 02 03 38"


def test_sync_write_refuses_a_wrong_data_length() -> None:
    with pytest.raises(ValueError, match="sync write of 2 bytes got 1 bytes for servo 3"):
        proto.sync_write(0x2A, 2, {3: b"\x00"})


def test_status_packet_parameters() -> None:
    # Servo 1 answering a Present_Position read with 2048: FF FF 01 04 00 00 08 ~(01+04+00+00+08) = F2
    frame = bytes.fromhex("FFFF010400" + "0008" + "F2")
    assert proto.parse_status(frame, 1) == b"\x00\x08"


def test_status_error_bits_are_named() -> None:
    # Servo 3, error byte 0x24 = overheat (0x04) | overload (0x20); checksum ~(03+02+24) = D6
    frame = bytes.fromhex("FFFF030224D6")
    with pytest.raises(proto.ServoStatusError, match=r"servo 3 reports overheat, overload error \(status byte 0x24\)"):
        proto.parse_status(frame, 3)


def test_every_documented_error_bit_has_a_name() -> None:
    assert proto.status_error_names(0x2F) == ["voltage", "angle", "overheat", "overcurrent", "overload"]
    assert proto.status_error_names(0x40) == ["bit 0x40"]
    assert proto.status_error_names(0) == []


def test_corrupt_status_packets_are_refused() -> None:
    good = proto.build_packet(1, 0, b"\x00\x08")
    with pytest.raises(proto.CorruptPacketError, match="fails its length or checksum"):
        proto.parse_status(good[:-1] + bytes([good[-1] ^ 1]), 1)
    with pytest.raises(proto.CorruptPacketError, match="expected a status packet from servo 2, got one from 1"):
        proto.parse_status(good, 2)
    with pytest.raises(proto.CorruptPacketError, match="must start with FF FF"):
        proto.parse_status(b"\x00" + good[1:], 1)


def test_find_packet_skips_noise_and_bad_checksums() -> None:
    bad = bytearray(proto.ping(2))
    bad[-1] ^= 0xFF
    stream = b"\x13\x37" + bytes(bad) + b"\xff" + proto.ping(1)  # noise, a corrupt frame, a stray FF, a frame
    packet, consumed = proto.find_packet(stream)
    assert packet == proto.Packet(1, proto.Instruction.PING, b"")
    assert consumed == len(stream)


def test_find_packet_waits_for_the_rest_of_a_frame() -> None:
    frame = proto.read(1, 0x38, 2)
    assert proto.find_packet(b"\x00" + frame[:5]) == (None, 1)  # the noise byte can go, the header stays
    assert proto.find_packet(b"\x00\xff") == (None, 1)  # a trailing FF may start the next header


def test_ids_outside_the_bus_are_refused() -> None:
    with pytest.raises(ValueError, match=r"servo id must be in \[0, 254\], got 255"):
        proto.ping(255)
