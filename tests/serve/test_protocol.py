"""Typed messages: wire round trips and field validation errors."""

from __future__ import annotations

import numpy as np
import pytest

from smolvla.serve.codec import ProtocolError, pack, unpack
from smolvla.serve.protocol import (
    CLIENT_TO_SERVER,
    MAX_TASK_BYTES,
    PROTOCOL_VERSION,
    SERVER_TO_CLIENT,
    Actions,
    Error,
    Hello,
    Observation,
    Skipped,
    Welcome,
    parse,
)

CAM = "observation.images.front"


def _hello(**kw) -> Hello:
    base = dict(camera_keys=(CAM,), image_shapes={CAM: (8, 10, 3)}, state_dim=4, action_dim=2, task="reach goal")
    return Hello(**{**base, **kw})


def _obs(**kw) -> Observation:
    base = dict(
        obs_id=3,
        episode=1,
        timestep=17,
        must_go=True,
        images={CAM: np.arange(240, dtype=np.uint8).reshape(8, 10, 3)},
        state=np.array([0.1, -0.2, 0.3, 0.4], np.float32),
        task="reach goal",
        sent_at=12.5,
    )
    return Observation(**{**base, **kw})


def _wire(message) -> dict:
    return unpack(pack(message.to_wire()))


def test_hello_round_trip() -> None:
    hello = _hello(token="s3cret", client_name="arm-1")
    back = parse(_wire(hello), CLIENT_TO_SERVER)
    assert back == hello


def test_observation_round_trip_keeps_arrays_exact() -> None:
    obs = _obs()
    back = parse(_wire(obs), CLIENT_TO_SERVER)
    assert isinstance(back, Observation)
    assert (back.obs_id, back.episode, back.timestep, back.must_go, back.task, back.sent_at) == (
        3,
        1,
        17,
        True,
        "reach goal",
        12.5,
    )
    np.testing.assert_array_equal(back.images[CAM], obs.images[CAM])
    assert back.state.dtype == np.float32
    np.testing.assert_array_equal(back.state, obs.state)


def test_server_messages_round_trip() -> None:
    actions = Actions(
        obs_id=3,
        episode=1,
        timestep=17,
        actions=np.ones((5, 2), np.float32),
        sent_at=1.0,
        inference_s=0.2,
        batch_size=2,
    )
    back = parse(_wire(actions), SERVER_TO_CLIENT)
    assert (back.obs_id, back.timestep, back.batch_size, back.inference_s) == (3, 17, 2, 0.2)
    np.testing.assert_array_equal(back.actions, actions.actions)
    welcome = Welcome(
        "abc", chunk_size=50, n_action_steps=25, action_dim=2, fps_hint=30.0, max_message_bytes=4096, policy="p"
    )
    assert parse(_wire(welcome), SERVER_TO_CLIENT) == welcome
    assert parse(_wire(Skipped(4, 1, "similar_state")), SERVER_TO_CLIENT) == Skipped(4, 1, "similar_state")
    err = Error("bad_message", "nope", fatal=True, obs_id=None)
    assert parse(_wire(err), SERVER_TO_CLIENT) == err


def test_version_mismatch_is_reported_first() -> None:
    msg = _wire(_hello())
    msg["protocol_version"] = PROTOCOL_VERSION + 1
    del msg["state_dim"]  # even with another field missing, the version is what the peer must hear about
    with pytest.raises(
        ProtocolError, match=rf"server speaks {PROTOCOL_VERSION}, client sent {PROTOCOL_VERSION + 1}"
    ) as e:
        parse(msg, CLIENT_TO_SERVER)
    assert e.value.code == "version_mismatch"


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda m: m.pop("state_dim"), "hello: missing field 'state_dim'"),
        (lambda m: m.update(state_dim="4"), "hello: field 'state_dim' must be int, got str"),
        (lambda m: m.update(state_dim=True), "hello: field 'state_dim' must be int, got bool"),
        (lambda m: m.update(camera_keys=[CAM, CAM]), "camera_keys must be distinct strings"),
        (
            lambda m: m.update(image_shapes={CAM: [8, 10, 4]}),
            r"image_shapes\['observation.images.front'\] must be \[H, W, 3\]",
        ),
        (lambda m: m.update(image_shapes={}), r"image_shapes keys \[\] differ from camera_keys"),
        (lambda m: m.update(token=5), "field 'token' must be str or nil, got int"),
    ],
)
def test_hello_field_errors(mutate, match: str) -> None:
    msg = _wire(_hello())
    mutate(msg)
    with pytest.raises(ProtocolError, match=match):
        parse(msg, CLIENT_TO_SERVER)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda m: m.update(timestep=-1), "observation: field 'timestep' must be >= 0, got -1"),
        (lambda m: m.update(must_go=1), "observation: field 'must_go' must be bool, got int"),
        (lambda m: m.update(state=[1.0, 2.0]), "observation: field 'state' must be dict, got list"),
        (lambda m: m["state"].update(dtype="object"), r"observation.state: dtype 'object' is not allowed"),
    ],
)
def test_observation_field_errors(mutate, match: str) -> None:
    msg = _wire(_obs())
    mutate(msg)
    with pytest.raises(ProtocolError, match=match):
        parse(msg, CLIENT_TO_SERVER)


def test_unexpected_type_and_wrong_direction() -> None:
    with pytest.raises(
        ProtocolError, match=r"unexpected message type 'actions'; expected one of \['hello', 'observation'\]"
    ):
        parse(_wire(Actions(1, 0, 0, np.zeros((1, 1), np.float32))), CLIENT_TO_SERVER)
    with pytest.raises(ProtocolError, match=r"unexpected message type None"):
        parse({"no": "type"}, SERVER_TO_CLIENT)


def test_actions_must_be_float32_matrix() -> None:
    msg = _wire(Actions(1, 0, 0, np.zeros((2, 3), np.float32)))
    msg["actions"] = _wire(Actions(1, 0, 0, np.zeros((2, 3), np.float64)))["actions"]
    with pytest.raises(ProtocolError, match=r"actions: expected float32\[n, action_dim\], got float64\[2, 3\]"):
        parse(msg, SERVER_TO_CLIENT)


def test_unhashable_type_field_is_a_bad_message() -> None:
    # A list in "type" used to raise TypeError (unhashable) and close the connection with 1011.
    for kind in (["hello"], {"a": 1}):
        with pytest.raises(ProtocolError, match=r"unexpected message type .*; expected one of") as err:
            parse({"type": kind}, CLIENT_TO_SERVER)
        assert err.value.code == "bad_message"
        with pytest.raises(ProtocolError, match=r"expected a 'hello' message, got type "):
            Hello.from_wire({"type": kind})


@pytest.mark.parametrize("message", ["hello", "observation"])
def test_task_length_is_bounded_in_bytes_before_anything_tokenises_it(message: str) -> None:
    msg = _wire(_hello() if message == "hello" else _obs())
    assert len(_wire(_hello(task="é" * (MAX_TASK_BYTES // 2)))["task"].encode()) == MAX_TASK_BYTES  # at the limit: ok
    msg["task"] = "é" * (MAX_TASK_BYTES // 2 + 1)  # two UTF-8 bytes per character
    with pytest.raises(
        ProtocolError, match=rf"{message}: field 'task' is {MAX_TASK_BYTES + 2} bytes \(UTF-8\), over the limit of "
    ) as err:
        parse(msg, CLIENT_TO_SERVER)
    assert err.value.code == "bad_task"


def test_echoed_input_is_capped_in_error_texts() -> None:
    msg = _wire(_hello())
    msg["camera_keys"] = ["k"] * 100_000  # not distinct: the error quotes the list
    with pytest.raises(ProtocolError, match="camera_keys must be distinct strings") as err:
        parse(msg, CLIENT_TO_SERVER)
    assert len(str(err.value)) < 300
    with pytest.raises(ProtocolError, match="unexpected message type") as err:
        parse({"type": "x" * 10_000_000}, CLIENT_TO_SERVER)
    assert len(str(err.value)) < 300


_ODD_VALUES = [
    None,
    [],
    {},
    [[1]],
    {"a": []},
    2**63 - 1,
    -(2**63),
    float("nan"),
    float("inf"),
    True,
    "x" * 5000,
    b"\xff" * 10,
    {"dtype": ["float32"], "shape": [1], "data": b""},
    {"dtype": "uint8", "shape": [2**62, 4], "data": b""},
    {"dtype": {"a": 1}, "shape": {}, "data": []},
]


def _every_message() -> list[tuple[dict, dict]]:
    actions = Actions(1, 0, 0, np.zeros((2, 2), np.float32))
    welcome = Welcome("s", 2, 1, 2, None, 4096, "p")
    client = [_hello(), _obs()]
    server = [actions, welcome, Skipped(1, 0, "similar_state"), Error("internal", "x")]
    return [(_wire(m), CLIENT_TO_SERVER) for m in client] + [(_wire(m), SERVER_TO_CLIENT) for m in server]


def test_malformed_fields_only_ever_raise_protocol_errors_with_a_detail() -> None:
    """Every field (and every entry of a map field) of every message replaced by odd values: the parser
    answers a ProtocolError with a non-empty, bounded text, never another exception."""
    tried = 0
    for base, allowed in _every_message():
        for key in base:
            variants = [{**base, key: odd} for odd in _ODD_VALUES]
            if isinstance(base[key], dict):
                variants += [{**base, key: {**base[key], sub: odd}} for sub in base[key] for odd in _ODD_VALUES]
            for msg in variants:
                tried += 1
                try:
                    parse(msg, allowed)
                except ProtocolError as err:
                    assert str(err).strip() and len(str(err)) < 400, (base["type"], key, str(err)[:500])
    assert tried > 500
