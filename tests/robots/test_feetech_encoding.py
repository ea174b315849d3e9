"""Sign-magnitude encodings: bit 15 for positions and velocities, bit 11 for the homing offset."""

from __future__ import annotations

import pytest

from smolvla.robots.feetech.control_table import STS3215, register
from smolvla.robots.feetech.encoding import decode_sign_magnitude, encode_sign_magnitude, from_bytes, to_bytes


def test_hand_computed_values() -> None:
    assert encode_sign_magnitude(-5, 15) == 0x8005
    assert encode_sign_magnitude(-5, 11) == 0x0805
    assert encode_sign_magnitude(2047, 11) == 0x07FF
    assert encode_sign_magnitude(300, 15) == 300
    assert decode_sign_magnitude(0x8005, 15) == -5
    assert decode_sign_magnitude(0x0805, 11) == -5
    assert decode_sign_magnitude(0x0005, 11) == 5


@pytest.mark.parametrize("sign_bit", [10, 11, 15])
def test_round_trip(sign_bit: int) -> None:
    top = (1 << sign_bit) - 1
    for value in (-top, -1, 0, 1, top):
        assert decode_sign_magnitude(encode_sign_magnitude(value, sign_bit), sign_bit) == value


def test_overflow_names_the_limit() -> None:
    with pytest.raises(ValueError, match=r"\|-2048\| does not fit below sign bit 11 \(max 2047\)"):
        encode_sign_magnitude(-2048, 11)


def test_bytes_are_little_endian() -> None:
    assert to_bytes(2048, 2) == b"\x00\x08"
    assert from_bytes(b"\x00\x08") == 2048
    with pytest.raises(ValueError, match="register value 256 does not fit in 1 byte"):
        to_bytes(256, 1)


def test_control_table_encodings() -> None:
    assert (STS3215["Present_Position"].address, STS3215["Present_Position"].sign_bit) == (56, 15)
    assert (STS3215["Goal_Position"].address, STS3215["Goal_Velocity"].sign_bit) == (42, 15)
    assert (STS3215["Homing_Offset"].address, STS3215["Homing_Offset"].sign_bit) == (31, 11)
    assert STS3215["Model_Number"].address == 3 and STS3215["Torque_Enable"].address == 40
    with pytest.raises(ValueError, match="unknown STS3215 register 'Goal_Pos'"):
        register("Goal_Pos")
