"""Typed protocol messages between a robot client and the policy server (see docs/protocol.md).

Every frame is a msgpack map with a `"type"` field; each type below validates its own fields on the
way in (`from_wire`) and names the message type and field in every error. Robot-side code: no torch.

    client                          server
      | -- hello ------------------> |   version, cameras, image shapes, dims, task, token
      | <------------------ welcome -|   (or error, fatal, and the socket closes)
      | -- observation ------------> |
      | <- actions | skipped | error |   one reply per observation
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from smolvla.serve.codec import ProtocolError, brief, decode_array, encode_array

# Bumped on any incompatible change to a message; both sides must agree exactly.
PROTOCOL_VERSION = 1
# A task instruction is a sentence; the bound is checked here, before anything tokenises it (a 10 MiB task
# would hold the forward thread for seconds).
MAX_TASK_BYTES = 1024
# The Welcome feature a server announces when it takes real-time chunking prefixes (see Observation.prefix).
RTC_FEATURE = "rtc"
# The largest hello frame the server reads before the token is checked (a hello is a few hundred bytes).
MAX_HELLO_BYTES = 64 * 1024


def _field(msg: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in msg:
        raise ProtocolError("bad_message", f"{where}: missing field {key!r}")
    value = msg[key]
    # bool is an int subclass; an int field must not accept True/False.
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ProtocolError("bad_message", f"{where}: field {key!r} must be {names}, got {type(value).__name__}")
    return value


def _non_negative(value: int, key: str, where: str) -> int:
    if value < 0:
        raise ProtocolError("bad_message", f"{where}: field {key!r} must be >= 0, got {value}")
    return value


def _task(msg: dict[str, Any], where: str) -> str:
    task = _field(msg, "task", str, where)
    size = len(task.encode("utf-8"))
    if size > MAX_TASK_BYTES:
        raise ProtocolError(
            "bad_task", f"{where}: field 'task' is {size} bytes (UTF-8), over the limit of {MAX_TASK_BYTES} bytes"
        )
    return task


def _check_type(msg: dict[str, Any], expected: str) -> None:
    if msg.get("type") != expected:
        raise ProtocolError("bad_message", f"expected a {expected!r} message, got type {brief(msg.get('type'))}")


@dataclass(frozen=True)
class Hello:
    """First client frame. `image_shapes` are uint8[H, W, 3] per full camera key ("observation.images.top")."""

    TYPE: ClassVar[str] = "hello"
    camera_keys: tuple[str, ...]
    image_shapes: dict[str, tuple[int, int, int]]
    state_dim: int
    action_dim: int
    task: str
    token: str | None = None
    client_name: str = ""
    protocol_version: int = PROTOCOL_VERSION

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "protocol_version": self.protocol_version,
            "camera_keys": list(self.camera_keys),
            "image_shapes": {k: list(v) for k, v in self.image_shapes.items()},
            "state_dim": self.state_dim,
            "action_dim": self.action_dim,
            "task": self.task,
            "token": self.token,
            "client_name": self.client_name,
        }

    @classmethod
    def from_wire(cls, msg: dict[str, Any]) -> Hello:
        _check_type(msg, cls.TYPE)
        where = "hello"
        # The version is read first so that a newer client gets "version_mismatch", not a field error.
        version = _field(msg, "protocol_version", int, where)
        if version != PROTOCOL_VERSION:
            raise ProtocolError(
                "version_mismatch",
                f"protocol version mismatch: server speaks {PROTOCOL_VERSION}, client sent {version}",
            )
        keys = _field(msg, "camera_keys", list, where)
        if not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys):
            raise ProtocolError("bad_message", f"hello: camera_keys must be distinct strings, got {brief(keys)}")
        raw_shapes = _field(msg, "image_shapes", dict, where)
        shapes = {}
        for key, shape in raw_shapes.items():
            ok = isinstance(shape, list) and len(shape) == 3 and all(isinstance(d, int) and d > 0 for d in shape)
            if not ok or shape[2] != 3:
                raise ProtocolError(
                    "bad_message", f"hello: image_shapes[{brief(key)}] must be [H, W, 3], got {brief(shape)}"
                )
            shapes[key] = (shape[0], shape[1], shape[2])
        if set(shapes) != set(keys):
            raise ProtocolError(
                "bad_message", f"hello: image_shapes keys {brief(list(shapes))} differ from camera_keys {brief(keys)}"
            )
        token = msg.get("token")
        if token is not None and not isinstance(token, str):
            raise ProtocolError("bad_message", f"hello: field 'token' must be str or nil, got {type(token).__name__}")
        return cls(
            camera_keys=tuple(keys),
            image_shapes=shapes,
            state_dim=_non_negative(_field(msg, "state_dim", int, where), "state_dim", where),
            action_dim=_non_negative(_field(msg, "action_dim", int, where), "action_dim", where),
            task=_task(msg, where),
            token=token,
            # Free text for logs, kept short so that it cannot flood them.
            client_name=_field(msg, "client_name", str, where)[:64] if "client_name" in msg else "",
            protocol_version=version,
        )


@dataclass(frozen=True)
class Welcome:
    """Server's reply to a valid hello: what the served policy will send back."""

    TYPE: ClassVar[str] = "welcome"
    session_id: str
    chunk_size: int  # actions in every `actions` reply
    n_action_steps: int  # actions a synchronous client executes per chunk
    action_dim: int
    fps_hint: float | None
    max_message_bytes: int
    policy: str  # human-readable description of the served policy
    protocol_version: int = PROTOCOL_VERSION
    # Optional capabilities of this server ("rtc": it takes observation prefixes, see docs/protocol.md).
    # Absent from older servers' welcomes, so a client needing one refuses them instead of being ignored.
    features: tuple[str, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        wire = {"type": self.TYPE, **{k: getattr(self, k) for k in self.__dataclass_fields__}}
        wire["features"] = list(self.features)
        return wire

    @classmethod
    def from_wire(cls, msg: dict[str, Any]) -> Welcome:
        _check_type(msg, cls.TYPE)
        w = "welcome"
        fps = msg.get("fps_hint")
        return cls(
            session_id=_field(msg, "session_id", str, w),
            chunk_size=_field(msg, "chunk_size", int, w),
            n_action_steps=_field(msg, "n_action_steps", int, w),
            action_dim=_field(msg, "action_dim", int, w),
            fps_hint=float(fps) if isinstance(fps, int | float) else None,
            max_message_bytes=_field(msg, "max_message_bytes", int, w),
            policy=_field(msg, "policy", str, w),
            protocol_version=_field(msg, "protocol_version", int, w),
            features=_features(msg, w),
        )


def _features(msg: dict[str, Any], where: str) -> tuple[str, ...]:
    features = msg.get("features", [])
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise ProtocolError("bad_message", f"{where}: field 'features' must be a list of str, got {brief(features)}")
    return tuple(features)


@dataclass(frozen=True)
class Observation:
    """One robot observation. `timestep` = index of the next action the client will execute (0 = first);
    images uint8[H, W, 3] per camera key; state float32[state_dim]; `sent_at` is the client's monotonic
    clock, echoed back so the client can measure round trips without synchronised clocks."""

    TYPE: ClassVar[str] = "observation"
    obs_id: int
    episode: int
    timestep: int
    must_go: bool
    images: dict[str, np.ndarray]
    state: np.ndarray
    task: str
    sent_at: float = 0.0
    # Real-time chunking (a client whose aggregation is "rtc", see docs/protocol.md): float32[n, action_dim]
    # raw actions the client will still execute from `timestep` on, and how many timesteps it expects to
    # pass before the chunk arrives. Absent (None) otherwise; older clients never send them.
    prefix: np.ndarray | None = None
    inference_delay: int = 0

    def to_wire(self) -> dict[str, Any]:
        wire = {
            "type": self.TYPE,
            "obs_id": self.obs_id,
            "episode": self.episode,
            "timestep": self.timestep,
            "must_go": self.must_go,
            "images": {k: encode_array(v, field=f"observation.images[{k!r}]") for k, v in self.images.items()},
            "state": encode_array(self.state, field="observation.state"),
            "task": self.task,
            "sent_at": self.sent_at,
        }
        if self.prefix is not None:
            wire["prefix"] = encode_array(self.prefix, field="observation.prefix")
            wire["inference_delay"] = self.inference_delay
        return wire

    @classmethod
    def from_wire(cls, msg: dict[str, Any]) -> Observation:
        _check_type(msg, cls.TYPE)
        w = "observation"
        images = _field(msg, "images", dict, w)
        prefix, delay = _rtc_fields(msg, w)
        return cls(
            obs_id=_field(msg, "obs_id", int, w),
            episode=_non_negative(_field(msg, "episode", int, w), "episode", w),
            timestep=_non_negative(_field(msg, "timestep", int, w), "timestep", w),
            must_go=_field(msg, "must_go", bool, w),
            images={k: decode_array(v, field=f"observation.images[{k!r}]") for k, v in images.items()},
            state=decode_array(_field(msg, "state", dict, w), field="observation.state"),
            task=_task(msg, w),
            sent_at=float(_field(msg, "sent_at", (int, float), w)),
            prefix=prefix,
            inference_delay=delay,
        )


def _rtc_fields(msg: dict[str, Any], where: str) -> tuple[np.ndarray | None, int]:
    """(prefix float32[n, action_dim] or None, inference_delay >= 0); both present or both absent. The
    prefix's action_dim and length are checked against the session by the server (`spec.check_observation`)."""
    if "prefix" not in msg and "inference_delay" not in msg:
        return None, 0
    prefix = decode_array(_field(msg, "prefix", dict, where), field="observation.prefix")
    if prefix.ndim != 2 or prefix.dtype != np.float32:
        raise ProtocolError(
            "bad_message", f"{where}: prefix must be float32[n, action_dim], got {prefix.dtype}{list(prefix.shape)}"
        )
    if not np.isfinite(prefix).all():
        raise ProtocolError("bad_message", f"{where}: prefix holds NaN or inf")
    delay = _non_negative(_field(msg, "inference_delay", int, where), "inference_delay", where)
    return prefix, delay


@dataclass(frozen=True)
class Actions:
    """A chunk: `actions` float32[n, action_dim] in raw robot units; row i is for timestep `timestep + i`."""

    TYPE: ClassVar[str] = "actions"
    obs_id: int
    episode: int
    timestep: int
    actions: np.ndarray
    sent_at: float = 0.0  # the observation's `sent_at`, echoed
    inference_s: float = 0.0  # server-side forward time of the batch this chunk came from
    batch_size: int = 1

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "obs_id": self.obs_id,
            "episode": self.episode,
            "timestep": self.timestep,
            "actions": encode_array(self.actions, field="actions.actions"),
            "sent_at": self.sent_at,
            "inference_s": self.inference_s,
            "batch_size": self.batch_size,
        }

    @classmethod
    def from_wire(cls, msg: dict[str, Any]) -> Actions:
        _check_type(msg, cls.TYPE)
        w = "actions"
        actions = decode_array(_field(msg, "actions", dict, w), field="actions.actions")
        if actions.ndim != 2 or actions.dtype != np.float32:
            raise ProtocolError(
                "bad_message", f"actions: expected float32[n, action_dim], got {actions.dtype}{list(actions.shape)}"
            )
        inference_s = float(_field(msg, "inference_s", (int, float), w))
        if not math.isfinite(inference_s):
            raise ProtocolError("bad_message", f"actions: inference_s must be finite, got {inference_s}")
        return cls(
            obs_id=_field(msg, "obs_id", int, w),
            episode=_field(msg, "episode", int, w),
            timestep=_non_negative(_field(msg, "timestep", int, w), "timestep", w),
            actions=actions,
            sent_at=float(_field(msg, "sent_at", (int, float), w)),
            inference_s=inference_s,
            batch_size=_field(msg, "batch_size", int, w),
        )


@dataclass(frozen=True)
class Skipped:
    """The server did not run the policy on an observation (`reason`: "similar_state", "superseded",
    "duplicate_timestep"); the client may send another."""

    TYPE: ClassVar[str] = "skipped"
    obs_id: int
    episode: int
    reason: str

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.TYPE, "obs_id": self.obs_id, "episode": self.episode, "reason": self.reason}

    @classmethod
    def from_wire(cls, msg: dict[str, Any]) -> Skipped:
        _check_type(msg, cls.TYPE)
        return cls(
            obs_id=_field(msg, "obs_id", int, "skipped"),
            episode=_field(msg, "episode", int, "skipped"),
            reason=_field(msg, "reason", str, "skipped"),
        )


@dataclass(frozen=True)
class Error:
    """An error reply. `fatal` errors are followed by the server closing the connection."""

    TYPE: ClassVar[str] = "error"
    code: str
    message: str
    fatal: bool = False
    obs_id: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "code": self.code,
            "message": self.message,
            "fatal": self.fatal,
            "obs_id": self.obs_id,
        }

    @classmethod
    def from_wire(cls, msg: dict[str, Any]) -> Error:
        _check_type(msg, cls.TYPE)
        obs_id = msg.get("obs_id")
        return cls(
            code=_field(msg, "code", str, "error"),
            message=_field(msg, "message", str, "error"),
            fatal=_field(msg, "fatal", bool, "error"),
            obs_id=obs_id if isinstance(obs_id, int) else None,
        )


# What each side may receive, by "type".
SERVER_TO_CLIENT: dict[str, type] = {m.TYPE: m for m in (Welcome, Actions, Skipped, Error)}
CLIENT_TO_SERVER: dict[str, type] = {m.TYPE: m for m in (Hello, Observation)}


def parse(msg: dict[str, Any], allowed: dict[str, type]) -> Any:
    """Message map -> the typed message its "type" names, if that type is in `allowed`."""
    kind = msg.get("type")
    if not isinstance(kind, str) or kind not in allowed:
        raise ProtocolError("bad_message", f"unexpected message type {brief(kind)}; expected one of {sorted(allowed)}")
    return allowed[kind].from_wire(msg)
