"""Sign-magnitude register encodings of the STS series and little-endian byte packing.

The STS3215 stores signed values as a magnitude with a sign bit, not as two's complement: bit 15 for
positions and velocities, bit 11 for the homing offset, bit 10 for the load. -5 as a goal position is
0x8005, -5 as a homing offset is 0x0805.
"""

from __future__ import annotations


def encode_sign_magnitude(value: int, sign_bit: int) -> int:
    """Signed integer -> register value with the sign at `sign_bit` and the magnitude below it."""
    magnitude = abs(value)
    if magnitude >= 1 << sign_bit:
        raise ValueError(f"|{value}| does not fit below sign bit {sign_bit} (max {(1 << sign_bit) - 1})")
    return (1 << sign_bit) | magnitude if value < 0 else magnitude


def decode_sign_magnitude(raw: int, sign_bit: int) -> int:
    """Register value -> signed integer (bits above the sign bit are ignored, as the servo does)."""
    magnitude = raw & ((1 << sign_bit) - 1)
    return -magnitude if raw & (1 << sign_bit) else magnitude


def to_bytes(value: int, size: int) -> bytes:
    """Unsigned register value -> `size` little-endian bytes."""
    if not 0 <= value < 1 << (8 * size):
        raise ValueError(f"register value {value} does not fit in {size} byte(s)")
    return value.to_bytes(size, "little")


def from_bytes(data: bytes) -> int:
    return int.from_bytes(data, "little")
