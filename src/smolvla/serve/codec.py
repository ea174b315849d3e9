"""Wire codec: msgpack frames carrying numpy arrays as `{dtype, shape, data}` maps. Never pickle.

Arrays are only decoded where a message schema says a field holds one (`decode_array` is called by the
typed messages in `protocol.py`), so a frame can never smuggle in an object of a type the receiver did
not ask for. Object, string, void and complex dtypes are refused on both ends; bytes are little-endian.
This module is robot-side code: numpy + msgpack only, no torch.
"""

from __future__ import annotations

import math
import reprlib
from typing import Any

import msgpack
import numpy as np

# dtype names allowed on the wire; everything else (object, str, void, datetime, complex) is refused.
ALLOWED_DTYPES = frozenset(
    {"bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "int64", "float16", "float32", "float64"}
)
MAX_NDIM = 8
# Default cap on one frame; three 512x512 RGB uint8 cameras are ~2.4 MB.
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024


# Error texts quote what the peer sent only this far: an error must never grow with the input it refuses.
MAX_ECHO_CHARS = 120

_echo = reprlib.Repr()
_echo.maxstring = _echo.maxother = MAX_ECHO_CHARS
_echo.maxlist = _echo.maxdict = _echo.maxset = _echo.maxtuple = 8
_echo.maxlevel = 3


def brief(value: Any) -> str:
    """A short repr of something a peer sent, for error texts and logs (at most ~MAX_ECHO_CHARS per item)."""
    if isinstance(value, bytes | bytearray):
        head = bytes(value[:24])
        return repr(head) if len(value) <= 24 else f"{head!r}... ({len(value)} bytes)"
    return _echo.repr(value)


class ProtocolError(ValueError):
    """A frame that breaks the protocol. `code` is the machine-readable error code sent back to the peer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def encode_array(array: np.ndarray, *, field: str = "array") -> dict[str, Any]:
    """numpy array (any shape, an allowed dtype) -> `{"dtype": name, "shape": [..], "data": bytes}`."""
    if not isinstance(array, np.ndarray):
        raise ProtocolError("bad_message", f"{field}: expected a numpy.ndarray, got {type(array).__name__}")
    name = array.dtype.name
    if name not in ALLOWED_DTYPES:
        raise ProtocolError(
            "bad_dtype", f"{field}: dtype {array.dtype} cannot go on the wire; allowed: {sorted(ALLOWED_DTYPES)}"
        )
    if array.ndim > MAX_NDIM:
        raise ProtocolError("bad_message", f"{field}: at most {MAX_NDIM} dimensions, got {array.ndim}")
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return {"dtype": name, "shape": list(array.shape), "data": np.ascontiguousarray(little).tobytes()}


def decode_array(obj: Any, *, field: str = "array") -> np.ndarray:
    """Inverse of `encode_array`; checks dtype, shape and that the byte count matches. Returns a writable copy."""
    if not isinstance(obj, dict) or set(obj) != {"dtype", "shape", "data"}:
        got = brief(list(obj)) if isinstance(obj, dict) else type(obj).__name__
        raise ProtocolError("bad_message", f"{field}: expected a map with keys ['data', 'dtype', 'shape'], got {got}")
    name, shape, data = obj["dtype"], obj["shape"], obj["data"]
    # isinstance first: a list or map in `dtype` is unhashable and must not reach the set lookup.
    if not isinstance(name, str) or name not in ALLOWED_DTYPES:
        raise ProtocolError(
            "bad_dtype", f"{field}: dtype {brief(name)} is not allowed; allowed: {sorted(ALLOWED_DTYPES)}"
        )
    if not isinstance(shape, list) or len(shape) > MAX_NDIM:
        raise ProtocolError(
            "bad_message", f"{field}: shape must be a list of at most {MAX_NDIM} ints, got {brief(shape)}"
        )
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise ProtocolError("bad_message", f"{field}: shape entries must be non-negative ints, got {brief(shape)}")
    if not isinstance(data, bytes):
        raise ProtocolError("bad_message", f"{field}: data must be bytes, got {type(data).__name__}")
    dtype = np.dtype(name).newbyteorder("<")
    # Python ints: a product that overflows int64 (e.g. [2**62, 4]) must not wrap around to a small count.
    expected = math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise ProtocolError("bad_message", f"{field}: shape {shape} of {name} needs {expected} bytes, got {len(data)}")
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(np.dtype(name), copy=True)


# msgpack errors whose str() is empty; an error reply always says what was wrong.
_MSGPACK_DETAILS = {
    msgpack.FormatError: "a reserved or invalid type byte",
    msgpack.StackError: "nesting deeper than the decoder allows",
}


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ProtocolError("bad_message", f"msgpack extension types are not part of the protocol (got ext code {code})")


def pack(message: dict[str, Any]) -> bytes:
    """A message map (only str/int/float/bool/None/bytes/list/dict inside) -> one binary frame."""
    try:
        return msgpack.packb(message, use_bin_type=True, strict_types=False)
    except TypeError as err:
        raise ProtocolError("bad_message", f"message is not msgpack-serialisable: {err}") from err


def unpack(frame: bytes, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """One binary frame -> message map. Refuses frames over `max_bytes`, text frames and non-map payloads."""
    if not isinstance(frame, bytes | bytearray | memoryview):
        raise ProtocolError("bad_message", f"expected a binary frame, got {type(frame).__name__}")
    if len(frame) > max_bytes:
        raise ProtocolError("too_large", f"frame of {len(frame)} bytes exceeds the limit of {max_bytes} bytes")
    try:
        message = msgpack.unpackb(frame, raw=False, strict_map_key=True, ext_hook=_refuse_ext, use_list=True)
    except ProtocolError:
        raise
    except (ValueError, TypeError, msgpack.UnpackException) as err:
        detail = str(err) or _MSGPACK_DETAILS.get(type(err), type(err).__name__)
        raise ProtocolError("bad_message", f"frame is not valid msgpack: {detail}") from err
    if not isinstance(message, dict):
        raise ProtocolError("bad_message", f"frame must hold a map, got {type(message).__name__}")
    return message
