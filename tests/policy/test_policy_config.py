"""PolicyConfig: JSON round trip and validation errors."""

from __future__ import annotations

import pytest

from smolvla.model.config import get_config
from smolvla.policy.config import PolicyConfig


def _cfg(**kw) -> PolicyConfig:
    base = {"model": get_config("tiny"), "n_action_steps": 5}
    return PolicyConfig(**{**base, **kw})


def test_json_round_trip() -> None:
    cfg = _cfg(camera_keys=("observation.images.a", "observation.images.b"), empty_cameras=1, state_dim=7)
    again = PolicyConfig.from_json(cfg.to_json())
    assert again == cfg
    assert again.camera_keys == ("observation.images.a", "observation.images.b")
    assert again.chunk_size == 10 and again.image_size == 64 and again.num_cameras == 3


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"camera_keys": ("top",)}, "camera key 'top' must look like 'observation.images.<name>'"),
        ({"camera_keys": ("observation.images.a",) * 2}, "camera_keys has duplicates"),
        ({"camera_keys": ()}, "at least one real camera"),
        ({"state_dim": 33}, r"state_dim must be in \[1, 32\], got 33"),
        ({"action_dim": 0}, r"action_dim must be in \[1, 32\], got 0"),
        ({"n_action_steps": 11}, r"n_action_steps must be in \[1, chunk_size=10\], got 11"),
        ({"state_norm": "min_max"}, "state_norm must be one of"),
        ({"empty_cameras": -1}, "empty_cameras must be >= 0"),
    ],
)
def test_validation_errors(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _cfg(**kw)


def test_unknown_json_key_is_an_error() -> None:
    d = _cfg().to_dict() | {"camera_keyz": []}
    with pytest.raises(ValueError, match=r"unknown PolicyConfig keys \['camera_keyz'\]"):
        PolicyConfig.from_dict(d)
