"""Our checkpoint directory: round trip gives identical predictions; loading is strict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from smolvla import SmolVLAPolicy
from smolvla.policy.testing import make_fake_batch, make_tiny_policy


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory):
    policy = make_tiny_policy(camera_keys=("observation.images.a", "observation.images.b"), state_dim=3, seed=3)
    path = tmp_path_factory.mktemp("ckpt") / "policy"
    policy.save_pretrained(path)
    return policy, path


def test_round_trip_identical_predictions(saved) -> None:
    policy, path = saved
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json",
        "model.safetensors",
        "stats.safetensors",
        "tokenizer.json",
    ]
    loaded = SmolVLAPolicy.from_pretrained(path)
    assert loaded.config == policy.config
    assert loaded.stats.allclose(policy.stats, rtol=0)
    batch = make_fake_batch(policy.config)
    noise = torch.randn(2, 10, 32, generator=torch.Generator().manual_seed(0))
    assert torch.equal(loaded.predict_action_chunk(batch, noise), policy.predict_action_chunk(batch, noise))
    assert not any(k.startswith("lm_head") for k in load_file(str(path / "model.safetensors")))


def test_overwrite_is_atomic_and_leaves_no_temp_dirs(saved, tmp_path: Path) -> None:
    policy, _ = saved
    target = tmp_path / "p"
    policy.save_pretrained(target)
    (target / "stale.txt").write_text("old")
    policy.save_pretrained(target)
    assert not (target / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["p"]


# Run in a child process that dies (no cleanup, no exception handler) while writing the weights.
KILLED_MID_SAVE = """
import os, sys
import smolvla.policy.checkpoint as ckpt
from smolvla.policy.testing import make_tiny_policy

def killed(tensors, filename, metadata=None):
    open(filename, "wb").write(b"partial")
    os._exit(9)

ckpt.save_file = killed
make_tiny_policy(seed=1).save_pretrained(sys.argv[1])
"""


def test_kill_mid_save_keeps_the_previous_checkpoint_and_next_save_cleans_up(saved, tmp_path: Path) -> None:
    policy, _ = saved
    target = tmp_path / "p"
    policy.save_pretrained(target)
    before = {f.name: f.read_bytes() for f in target.iterdir()}
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", KILLED_MID_SAVE, str(target)], env=env, timeout=300)
    assert proc.returncode == 9
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "p"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".p.")  # the killed save's staging dir
    assert {f.name: f.read_bytes() for f in target.iterdir()} == before
    policy.save_pretrained(target)
    assert [p.name for p in tmp_path.iterdir()] == ["p"]


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_missing_and_misshapen_weights_are_listed(saved, tmp_path: Path) -> None:
    _, path = saved
    bad = _copy(path, tmp_path / "bad")
    w = load_file(str(bad / "model.safetensors"))
    del w["state_proj.bias"]
    w["action_out_proj.weight"] = torch.zeros(32, 7)
    w["extra.weight"] = torch.zeros(1)
    save_file(w, str(bad / "model.safetensors"))
    with pytest.raises(
        ValueError, match=r"missing keys \(1\): state_proj.bias.*unexpected keys \(1\): extra.weight"
    ) as e:
        SmolVLAPolicy.from_pretrained(bad)
    assert "action_out_proj.weight: expected (32, 48), got (32, 7)" in str(e.value)


def test_corrupt_weights_file(saved, tmp_path: Path) -> None:
    _, path = saved
    bad = _copy(path, tmp_path / "corrupt")
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt or unreadable safetensors file .*model.safetensors"):
        SmolVLAPolicy.from_pretrained(bad)


def test_stats_missing_for_a_feature(saved, tmp_path: Path) -> None:
    _, path = saved
    bad = _copy(path, tmp_path / "nostats")
    stats = load_file(str(bad / "stats.safetensors"))
    del stats["action.std"]
    save_file(stats, str(bad / "stats.safetensors"))
    with pytest.raises(ValueError, match="missing action.std"):
        SmolVLAPolicy.from_pretrained(bad)


def test_config_typo_and_missing_dir(saved, tmp_path: Path) -> None:
    _, path = saved
    bad = _copy(path, tmp_path / "typo")
    cfg = json.loads((bad / "config.json").read_text()) | {"n_action_step": 3}
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"unknown PolicyConfig keys \['n_action_step'\]"):
        SmolVLAPolicy.from_pretrained(bad)
    with pytest.raises(FileNotFoundError, match="checkpoint directory not found"):
        SmolVLAPolicy.from_pretrained(tmp_path / "nowhere")


def test_policy_without_tokenizer_round_trips(tmp_path: Path) -> None:
    policy = make_tiny_policy()
    policy.tokenizer = None
    policy.save_pretrained(tmp_path / "p")
    assert not (tmp_path / "p" / "tokenizer.json").exists()
    assert SmolVLAPolicy.from_pretrained(tmp_path / "p").tokenizer is None


def test_loading_runs_no_initialiser_and_loads_identically(saved, monkeypatch) -> None:
    """The model is allocated without drawing random initial weights (seconds at full size), then filled."""
    policy, path = saved

    def initialiser_ran(*args, **kwargs):
        raise AssertionError("a random initialiser ran while loading")

    for name in ("normal_", "uniform_"):
        monkeypatch.setattr(torch.Tensor, name, initialiser_ran)
    loaded = SmolVLAPolicy.from_pretrained(path)
    monkeypatch.undo()
    batch = make_fake_batch(policy.config)
    noise = torch.randn(2, 10, 32, generator=torch.Generator().manual_seed(0))
    assert torch.equal(loaded.predict_action_chunk(batch, noise), policy.predict_action_chunk(batch, noise))
