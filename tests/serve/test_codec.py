"""Wire codec: array round trips, refused dtypes, size limits, malformed frames."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from smolvla.serve.codec import MAX_ECHO_CHARS, ProtocolError, brief, decode_array, encode_array, pack, unpack


@pytest.mark.parametrize(
    "dtype", ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "int64", "float16", "float32", "float64"]
)
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3), (4, 5, 3), (1, 2, 1, 2)])
def test_array_round_trip_through_a_frame(dtype: str, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    array = np.asarray(rng.standard_normal(shape) * 50).astype(dtype)
    frame = pack({"type": "x", "a": encode_array(array)})
    back = decode_array(unpack(frame)["a"])
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable  # a copy, not a read-only view into the frame


def test_big_endian_and_non_contiguous_inputs_round_trip() -> None:
    big = np.arange(12, dtype=">f4").reshape(3, 4)
    back = decode_array(unpack(pack({"a": encode_array(big)}))["a"])
    np.testing.assert_array_equal(back, big.astype("<f4"))
    strided = np.arange(20, dtype=np.int32).reshape(4, 5)[:, ::2]
    np.testing.assert_array_equal(decode_array(encode_array(strided)), strided)


@pytest.mark.parametrize(
    ("array", "name"),
    [
        (np.array([{"a": 1}], dtype=object), "object"),
        (np.array(["text"]), "<U4"),
        (np.array([1 + 2j]), "complex128"),
    ],
)
def test_encode_refuses_non_numeric_dtypes(array: np.ndarray, name: str) -> None:
    with pytest.raises(ProtocolError, match=rf"field: dtype {name} cannot go on the wire") as err:
        encode_array(array, field="field")
    assert err.value.code == "bad_dtype"


def test_decode_refuses_object_dtype_even_if_declared() -> None:
    with pytest.raises(ProtocolError, match=r"obs: dtype 'object' is not allowed"):
        decode_array({"dtype": "object", "shape": [1], "data": b"\x00" * 8}, field="obs")


def test_decode_checks_byte_count_shape_and_keys() -> None:
    with pytest.raises(ProtocolError, match=r"shape \[2, 3\] of float32 needs 24 bytes, got 20"):
        decode_array({"dtype": "float32", "shape": [2, 3], "data": b"\x00" * 20})
    with pytest.raises(ProtocolError, match=r"shape entries must be non-negative ints, got \[-1\]"):
        decode_array({"dtype": "float32", "shape": [-1], "data": b""})
    with pytest.raises(ProtocolError, match=r"expected a map with keys \['data', 'dtype', 'shape'\], got \['dtype'\]"):
        decode_array({"dtype": "float32"})
    with pytest.raises(ProtocolError, match=r"data must be bytes, got str"):
        decode_array({"dtype": "uint8", "shape": [1], "data": "a"})


def test_unpack_refuses_oversized_frames() -> None:
    frame = pack({"a": encode_array(np.zeros(2000, dtype=np.uint8))})
    assert unpack(frame, max_bytes=len(frame))["a"]["shape"] == [2000]
    with pytest.raises(ProtocolError, match=rf"frame of {len(frame)} bytes exceeds the limit of 1000 bytes") as err:
        unpack(frame, max_bytes=1000)
    assert err.value.code == "too_large"


def test_unpack_refuses_garbage_text_non_maps_and_extensions() -> None:
    with pytest.raises(ProtocolError, match="frame is not valid msgpack"):
        unpack(b"\xc1")
    with pytest.raises(ProtocolError, match="expected a binary frame, got str"):
        unpack("hello")  # type: ignore[arg-type]
    with pytest.raises(ProtocolError, match="frame must hold a map, got list"):
        unpack(msgpack.packb([1, 2]))
    with pytest.raises(ProtocolError, match="extension types are not part of the protocol"):
        unpack(msgpack.packb({"a": msgpack.ExtType(1, b"x")}))


def test_pack_refuses_python_objects() -> None:
    with pytest.raises(ProtocolError, match="not msgpack-serialisable"):
        pack({"a": object()})


@pytest.mark.parametrize(
    ("obj", "code", "match"),
    [
        # An unhashable dtype must not reach the set lookup (it raised TypeError and closed the connection).
        ({"dtype": ["float32"], "shape": [1], "data": b""}, "bad_dtype", r"dtype \['float32'\] is not allowed"),
        ({"dtype": {"a": 1}, "shape": [1], "data": b""}, "bad_dtype", r"dtype \{'a': 1\} is not allowed"),
        # Products that overflow int64 wrapped around to 0 bytes and then crashed in reshape.
        (
            {"dtype": "uint8", "shape": [2**62, 4], "data": b""},
            "bad_message",
            r"shape \[4611686018427387904, 4\] of uint8 needs 18446744073709551616 bytes, got 0",
        ),
        (
            {"dtype": "float32", "shape": [2**63 - 1, 2**63 - 1], "data": b""},
            "bad_message",
            r"needs 340282366920938463389587631136930004996 bytes, got 0",
        ),
        ({b"dtype": "uint8", "shape": [1], "data": b"x"}, "bad_message", r"got \[b'dtype', 'shape', 'data'\]"),
    ],
)
def test_decode_refuses_unhashable_dtypes_and_overflowing_shapes(obj: dict, code: str, match: str) -> None:
    with pytest.raises(ProtocolError, match=match) as err:
        decode_array(obj, field="observation.state")
    assert err.value.code == code


@pytest.mark.parametrize(
    ("frame", "detail"),
    [(b"\xc1", "a reserved or invalid type byte"), (b"\x91" * 5000, "nesting deeper than the decoder allows")],
)
def test_unpack_errors_always_say_what_was_wrong(frame: bytes, detail: str) -> None:
    with pytest.raises(ProtocolError, match=f"^frame is not valid msgpack: {detail}$"):
        unpack(frame)


def test_brief_caps_what_is_echoed() -> None:
    assert brief("ok") == "'ok'"
    assert len(brief("x" * 10_000_000)) <= MAX_ECHO_CHARS + 5
    assert brief(b"y" * 1000) == repr(b"y" * 24) + "... (1000 bytes)"
    assert brief(list(range(10**6))) == "[0, 1, 2, 3, 4, 5, 6, 7, ...]"
    assert len(brief({"k" * 10_000: [[["deep"]]] * 1000})) < 3 * MAX_ECHO_CHARS
