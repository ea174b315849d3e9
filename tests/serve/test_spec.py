"""Handshake checks against the served policy, per-observation checks, and session admission."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from smolvla.serve.codec import ProtocolError
from smolvla.serve.protocol import Hello, Observation
from smolvla.serve.session import Session
from smolvla.serve.spec import ServerSpec, check_hello, check_observation

TOP, WRIST = "observation.images.top", "observation.images.wrist"


def _spec(**kw) -> ServerSpec:
    base = dict(camera_keys=(TOP, WRIST), state_dim=6, action_dim=6, chunk_size=50, n_action_steps=50)
    return ServerSpec(**{**base, **kw})


def _hello(**kw) -> Hello:
    base = dict(
        camera_keys=(TOP, WRIST),
        image_shapes={TOP: (48, 64, 3), WRIST: (48, 64, 3)},
        state_dim=6,
        action_dim=6,
        task="pick cube",
    )
    return Hello(**{**base, **kw})


def _obs(hello: Hello, **kw) -> Observation:
    images = {k: np.zeros(s, np.uint8) for k, s in hello.image_shapes.items()}
    base = dict(obs_id=1, episode=0, timestep=0, must_go=False, images=images, state=np.zeros(6, np.float32), task="t")
    return Observation(**{**base, **kw})


def test_matching_hello_passes() -> None:
    check_hello(_hello(), _spec(), token=None)
    check_hello(_hello(token="abc"), _spec(), token="abc")


@pytest.mark.parametrize(
    ("hello", "spec", "match"),
    [
        (
            _hello(camera_keys=(TOP,), image_shapes={TOP: (48, 64, 3)}),
            _spec(),
            r"camera keys: policy expects \['observation.images.top', 'observation.images.wrist'\], client sent "
            r"\['observation.images.top'\] \(missing \['observation.images.wrist'\], unexpected \[\]\)",
        ),
        (_hello(state_dim=7), _spec(), "state_dim: policy expects 6, client sent 7"),
        (_hello(action_dim=5), _spec(), "action_dim: policy expects 6, client sent 5"),
        (
            _hello(),
            _spec(image_shapes={TOP: (48, 64, 3), WRIST: (96, 128, 3)}),
            r"image shape of 'observation.images.wrist': policy expects \[96, 128, 3\], client sent \[48, 64, 3\]",
        ),
        (_hello(task="  "), _spec(), "task: must be a non-empty instruction"),
    ],
)
def test_handshake_mismatch_messages(hello: Hello, spec: ServerSpec, match: str) -> None:
    with pytest.raises(ProtocolError, match=match) as err:
        check_hello(hello, spec, token=None)
    assert err.value.code == "handshake_mismatch"


def test_a_task_the_policy_cannot_take_is_refused_at_the_handshake() -> None:
    def check_task(task: str) -> None:
        raise ValueError(f"task 0 is {len(task) + 1} tokens, more than the budget of 16")

    with pytest.raises(ProtocolError, match="handshake mismatch: task: task 0 is 11 tokens, more than the budget") as e:
        check_hello(_hello(task="reach goal"), _spec(), token=None, check_task=check_task)
    assert e.value.code == "handshake_mismatch"
    check_hello(_hello(), _spec(), token=None, check_task=lambda task: None)


def test_all_mismatches_are_listed_together() -> None:
    with pytest.raises(ProtocolError, match="state_dim: policy expects 6, client sent 2; action_dim: policy expects 6"):
        check_hello(_hello(state_dim=2, action_dim=1), _spec(), token=None)


@pytest.mark.parametrize("sent", [None, "abd", "abcd", ""])
def test_wrong_or_missing_token_is_unauthorized(sent: str | None) -> None:
    with pytest.raises(ProtocolError, match="hello: missing or wrong token") as err:
        check_hello(_hello(token=sent), _spec(), token="abc")
    assert err.value.code == "unauthorized"


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(images={TOP: np.zeros((48, 64, 3), np.uint8)}), r"camera keys \['observation.images.top'\] != declared"),
        (
            dict(images={TOP: np.zeros((48, 64, 3), np.uint8), WRIST: np.zeros((48, 64, 3), np.float32)}),
            r"image 'observation.images.wrist' must be uint8\[48, 64, 3\], got float32\[48, 64, 3\]",
        ),
        (dict(state=np.zeros(5, np.float32)), r"state must be float32\[6\], got float32\[5\]"),
        (dict(state=np.zeros(6, np.float64)), r"state must be float32\[6\], got float64\[6\]"),
        (dict(state=np.array([np.nan] + [0.0] * 5, np.float32)), "state holds non-finite values"),
        (dict(task=""), "task must be a non-empty instruction"),
    ],
)
def test_observation_mismatch_messages(kw: dict, match: str) -> None:
    hello = _hello()
    with pytest.raises(ProtocolError, match=rf"observation 1: {match}") as err:
        check_observation(_obs(hello, **kw), hello)
    assert err.value.code == "observation_mismatch"


def test_spec_from_policy_config_and_validation() -> None:
    cfg = SimpleNamespace(camera_keys=[TOP], state_dim=6, action_dim=4, chunk_size=50, n_action_steps=30)
    spec = ServerSpec.from_policy_config(cfg, actions_per_chunk=20)
    assert (spec.camera_keys, spec.chunk_size, spec.n_action_steps, spec.action_dim) == ((TOP,), 20, 20, 4)
    with pytest.raises(ValueError, match=r"actions_per_chunk must be in \[1, 50\] \(the policy's chunk_size\), got 60"):
        ServerSpec.from_policy_config(cfg, actions_per_chunk=60)
    with pytest.raises(ValueError, match=r"ServerSpec.n_action_steps \(60\) > chunk_size \(50\)"):
        _spec(n_action_steps=60)
    with pytest.raises(ValueError, match=r"image_shapes keys \['observation.images.top'\] != camera_keys"):
        _spec(image_shapes={TOP: (1, 1, 3)})


def test_session_admission() -> None:
    hello = _hello()
    session = Session("s", hello)
    first = _obs(hello, timestep=0)
    assert session.admit(first, epsilon=0.05) is None
    session.mark_processed(first)
    near = _obs(hello, timestep=5, state=np.full(6, 0.01, np.float32))
    assert session.admit(near, 0.05) == "similar_state"
    assert session.admit(_obs(hello, timestep=0, state=np.ones(6, np.float32)), 0.05) == "duplicate_timestep"
    assert session.admit(_obs(hello, timestep=5, state=np.full(6, 0.01, np.float32), must_go=True), 0.05) is None
    far = _obs(hello, timestep=6, state=np.ones(6, np.float32))
    assert session.admit(far, 0.05) is None
    # A new episode forgets the last state and the answered timesteps.
    assert session.admit(_obs(hello, episode=1, timestep=0), 0.05) is None
    assert session.last_state is None and session.predicted_timesteps == set()
    session.mark_processed(far)  # a late observation of the old episode must not pollute the new one
    assert session.last_state is None
