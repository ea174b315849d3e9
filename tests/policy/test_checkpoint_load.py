"""Loading our checkpoint refuses what it cannot trust: a bad config.json, weights the config contradicts
(checked against the safetensors header before the model is allocated) and non-finite weights."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

import smolvla.policy.checkpoint as ckpt
from smolvla import SmolVLAPolicy
from smolvla.cli.main import app
from smolvla.model.config import get_config
from smolvla.policy.testing import make_tiny_policy
from smolvla.policy.weight_checks import check_shapes, model_skeleton


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "policy"
    make_tiny_policy(state_dim=3, seed=3).save_pretrained(path)
    return path


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _with_config(saved: Path, tmp_path: Path, edit: Callable[[dict], object]) -> Path:
    bad = _copy(saved, tmp_path / "bad")
    (bad / "config.json").write_text(json.dumps(edit(json.loads((bad / "config.json").read_text()))))
    return bad


def _decoder(**kw) -> Callable[[dict], dict]:
    def edit(d: dict) -> dict:
        d["model"]["decoder"].update(kw)
        return d

    return edit


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        # These used to fall back to the full-size default (and `inspect-checkpoint` exited 0).
        (lambda d: [], r"config.json: top level: expected a JSON object for PolicyConfig, got \[\] \(list\)"),
        (lambda d: {k: v for k, v in d.items() if k != "model"}, r"config.json: missing PolicyConfig keys \['model'\]"),
        # Used to be a raw TypeError.
        (lambda d: d | {"state_dim": "8"}, r"config.json: state_dim: expected int, got '8' \(str\)"),
        (_decoder(kv_heads=0), r"config.json: DecoderConfig.kv_heads must be > 0, got 0"),
    ],
)
def test_bad_config_json_is_refused_naming_the_key(saved: Path, tmp_path: Path, edit, match: str) -> None:
    bad = _with_config(saved, tmp_path, edit)
    with pytest.raises(ValueError, match=match):
        SmolVLAPolicy.from_pretrained(bad)
    result = CliRunner().invoke(app, ["inspect-checkpoint", str(bad)])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "config.json" in lines[0], result.output


def _no_allocation(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(cfg):
        raise AssertionError("the model was allocated before its shapes were checked")

    monkeypatch.setattr(ckpt, "uninitialised_model", refuse)


def test_enlarged_config_fails_before_allocating(saved: Path, tmp_path: Path, monkeypatch) -> None:
    """A decoder MLP of 1e9 would be ~3 TB of weights: the header check names the tensor and both shapes."""
    _no_allocation(monkeypatch)
    bad = _with_config(saved, tmp_path, _decoder(mlp=10**9))
    with pytest.raises(ValueError, match=r"model.safetensors: weights do not match the model; shape mismatches") as e:
        SmolVLAPolicy.from_pretrained(bad)
    assert "text.layers.0.mlp.gate_proj.weight: expected (1000000000, 64), got (128, 64)" in str(e.value)
    result = CliRunner().invoke(app, ["inspect-checkpoint", str(bad)])
    assert result.exit_code == 1 and "text.layers.0.mlp.gate_proj.weight: expected (1000000000, 64)" in result.output


def test_huge_layer_count_fails_before_building_even_the_skeleton(saved: Path, tmp_path: Path, monkeypatch) -> None:
    _no_allocation(monkeypatch)
    bad = _with_config(saved, tmp_path, _decoder(layers=10**7, total_layers=10**7))
    with pytest.raises(ValueError, match=r"config describes 20000002 transformer layers .* the file holds \d+ tensors"):
        SmolVLAPolicy.from_pretrained(bad)


def test_skeleton_has_every_shape_of_the_model_and_no_memory() -> None:
    cfg = get_config("tiny")
    skeleton = model_skeleton(cfg)
    real = {k: tuple(v.shape) for k, v in ckpt.SmolVLAModel(cfg).state_dict().items()}
    assert {k: tuple(v.shape) for k, v in skeleton.state_dict().items()} == real
    assert all(p.is_meta for p in skeleton.parameters())
    check_shapes(cfg, real, "ok")  # the model's own shapes pass
    full = model_skeleton(get_config("smolvla_base"))  # 450M parameters, on no memory
    assert sum(p.numel() for p in full.parameters()) > 400_000_000


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_naming_the_tensor(saved: Path, tmp_path: Path, bad_value: float) -> None:
    bad = _copy(saved, tmp_path / "nan")
    weights = load_file(str(bad / "model.safetensors"))
    weights["state_proj.weight"][0, 0] = bad_value
    weights["text.norm.weight"][:] = bad_value
    save_file(weights, str(bad / "model.safetensors"))
    m, n = weights["state_proj.weight"].numel(), weights["text.norm.weight"].numel()
    with pytest.raises(
        ValueError,
        match=rf"non-finite weights \(NaN or inf\) in 2 tensors: state_proj.weight \(1 of {m} values\), "
        rf"text.norm.weight \({n} of {n} values\); refusing",
    ):
        SmolVLAPolicy.from_pretrained(bad)


def test_valid_checkpoint_still_loads(saved: Path) -> None:
    policy = SmolVLAPolicy.from_pretrained(saved)
    assert all(torch.isfinite(p).all() for p in policy.model.parameters())


def test_lerobot_checkpoint_with_nan_weights_is_refused(tiny_hf_dir: Path, tmp_path: Path) -> None:
    from lerobot_fixture import write_lerobot_checkpoint
    from test_lerobot import _source_policy, lerobot_config

    from smolvla.policy.lerobot import load_lerobot_policy

    source = _source_policy(tiny_hf_dir)
    path = write_lerobot_checkpoint(source, tmp_path / "c", lerobot_config(tiny_hf_dir))
    weights = load_file(str(path / "model.safetensors"))
    weights["model.action_out_proj.bias"][1] = float("nan")
    save_file(weights, str(path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"model.safetensors: non-finite weights .* action_out_proj.bias \(1 of"):
        load_lerobot_policy(path)
