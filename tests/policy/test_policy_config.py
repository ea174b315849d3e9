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
        (
            {"state_norm": "min_max"},
            r"PolicyConfig.state_norm: expected one of \['mean_std', 'identity'\], got 'min_max'",
        ),
        ({"state_dim": "8"}, r"PolicyConfig.state_dim: expected int, got '8' \(str\)"),
        ({"camera_keys": "observation.images.a"}, r"PolicyConfig.camera_keys: expected a list of str, got 'obs"),
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


def _tiny_dict() -> dict:
    return _cfg(state_dim=8).to_dict()


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        # The file a checkpoint loader reads: a wrong type names the key path, the expected type and the value.
        (lambda d: d | {"state_dim": "8"}, r"^config.json: state_dim: expected int, got '8' \(str\)$"),
        (lambda d: d | {"action_dim": 4.0}, r"action_dim: expected int, got 4.0 \(float\)"),
        (lambda d: d | {"truncate_task": "no"}, r"truncate_task: expected bool, got 'no' \(str\)"),
        (lambda d: d | {"camera_keys": ["observation.images.a", 3]}, r"camera_keys\[1\]: expected str, got 3 \(int\)"),
        (lambda d: d | {"norm_eps": None}, r"norm_eps: expected float, got None"),
        (
            lambda d: d | {"action_norm": "meanstd"},
            r"action_norm: expected one of \['mean_std', 'identity'\], got 'meanstd' \(str\); did you mean 'mean_std'",
        ),
        (
            lambda d: d | {"model": d["model"] | {"decoder": d["model"]["decoder"] | {"kv_heads": "2"}}},
            r"model.decoder.kv_heads: expected int, got '2' \(str\)",
        ),
        (lambda d: d | {"model": []}, r"model: expected a JSON object for ModelConfig, got \[\] \(list\)"),
        # Missing fields must not fall back to the full-size model or to six joints.
        (lambda d: {k: v for k, v in d.items() if k != "model"}, r"missing PolicyConfig keys \['model'\]"),
        (lambda d: {k: v for k, v in d.items() if k != "state_dim"}, r"missing PolicyConfig keys \['state_dim'\]"),
        (lambda d: d | {"model": {}}, r"missing ModelConfig keys \['attention', 'chunk_size', .*\] in 'model'"),
        (
            lambda d: d | {"model": d["model"] | {"vision": {"hidden": 32}}},
            r"missing VisionConfig keys \['heads', .*\] in 'model.vision'",
        ),
        (lambda d: [], r"^config.json: top level: expected a JSON object for PolicyConfig, got \[\] \(list\)$"),
        # __post_init__'s checks say which file the values came from.
        (lambda d: d | {"state_dim": 40}, r"^config.json: state_dim must be in \[1, 32\], got 40$"),
    ],
)
def test_bad_config_file_contents(edit, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PolicyConfig.from_dict(edit(_tiny_dict()), source="config.json")


def test_unknown_key_suggests_the_field() -> None:
    with pytest.raises(
        ValueError,
        match=r"unknown PolicyConfig keys \['n_action_step'\] \(did you mean 'n_action_step' -> 'n_action_steps'\?\)",
    ):
        PolicyConfig.from_dict(_tiny_dict() | {"n_action_step": 3})


def test_fields_with_defaults_may_be_left_out() -> None:
    """Only the fields that fix the model and the robot interface are required in a file."""
    d = {k: v for k, v in _tiny_dict().items() if k in ("model", "camera_keys", "state_dim", "action_dim")}
    cfg = PolicyConfig.from_dict(d | {"n_action_steps": 5})
    assert cfg == _cfg(state_dim=8)
