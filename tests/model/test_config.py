"""ModelConfig: presets round-trip through JSON; sizes, types and required keys are checked with clear errors."""

from __future__ import annotations

import dataclasses
import json

import pytest

from smolvla.model.config import (
    PRESETS,
    ConnectorConfig,
    DecoderConfig,
    ExpertConfig,
    ModelConfig,
    VisionConfig,
    get_config,
)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_json(name: str) -> None:
    cfg = get_config(name)
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize(
    ("make", "match"),
    [
        # Zeros are refused by name before any division by them (was a ZeroDivisionError).
        (lambda: DecoderConfig(kv_heads=0), r"^DecoderConfig.kv_heads must be > 0, got 0$"),
        (lambda: DecoderConfig(head_dim=0), r"^DecoderConfig.head_dim must be > 0, got 0$"),
        (lambda: DecoderConfig(vocab_size=-1), r"^DecoderConfig.vocab_size must be > 0, got -1$"),
        (lambda: VisionConfig(patch_size=0), r"^VisionConfig.patch_size must be > 0, got 0$"),
        (lambda: ConnectorConfig(scale_factor=0), r"^ConnectorConfig.scale_factor must be > 0, got 0$"),
        (lambda: ExpertConfig(mlp_multiple_of=0), r"^ExpertConfig.mlp_multiple_of must be > 0, got 0$"),
        (lambda: DecoderConfig(heads=15, kv_heads=4), r"heads \(15\) must be a multiple of kv_heads \(4\)"),
        # Types and Literal values are checked however the config is made.
        (lambda: DecoderConfig(hidden="960"), r"^DecoderConfig.hidden: expected int, got '960' \(str\)$"),
        (lambda: VisionConfig(layer_norm_eps=float("nan")), r"VisionConfig.layer_norm_eps: expected a finite number"),
        (
            lambda: ModelConfig(attention="flash"),
            r"^ModelConfig.attention: expected one of \['sdpa', 'eager'\], got 'flash' \(str\)$",
        ),
        (lambda: ModelConfig(decoder={"hidden": 64}), r"ModelConfig.decoder: expected DecoderConfig, got \{"),
    ],
)
def test_invalid_values_raise_naming_the_field(make, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def _tiny_dict() -> dict:
    return get_config("tiny").to_dict()


def test_every_architecture_field_is_required_in_a_file() -> None:
    """A missing size must not silently take the full-size default."""
    d = _tiny_dict()
    del d["chunk_size"]
    with pytest.raises(ValueError, match=r"^ckpt/config.json: missing ModelConfig keys \['chunk_size'\]$"):
        ModelConfig.from_dict(d, source="ckpt/config.json")
    d = _tiny_dict()
    del d["decoder"]["vocab_size"]
    with pytest.raises(ValueError, match=r"missing DecoderConfig keys \['vocab_size'\] in 'decoder'"):
        ModelConfig.from_dict(d)


def test_wrong_types_in_a_file_name_the_key_path() -> None:
    d = _tiny_dict()
    d["vision"]["image_size"] = "64"
    with pytest.raises(ValueError, match=r"^c.json: vision.image_size: expected int, got '64' \(str\)$"):
        ModelConfig.from_dict(d, source="c.json")
    d = _tiny_dict() | {"attention": "sdpa2"}
    with pytest.raises(ValueError, match=r"attention: expected one of \['sdpa', 'eager'\], got 'sdpa2'.*'sdpa'\?"):
        ModelConfig.from_dict(d)


def test_rope_theta_is_gone_but_old_files_still_read() -> None:
    """SmolVLA's joint layers use `rope_wavelength` (LeRobot's 10000); the backbone's rope_theta had no effect,
    so DecoderConfig no longer has it. Configs written with it (the committed demo policy) still load."""
    assert "rope_theta" not in {f.name for f in dataclasses.fields(DecoderConfig)}
    d = _tiny_dict()
    d["decoder"]["rope_theta"] = 100_000.0
    assert ModelConfig.from_dict(d) == get_config("tiny")
    with pytest.raises(ValueError, match=r"unknown ModelConfig keys \['rope_theta'\]"):  # retired in decoder only
        ModelConfig.from_dict(_tiny_dict() | {"rope_theta": 1.0})
