"""Init sources: an HF backbone dir fills vision/connector/text and leaves expert and projections random."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from smolvla.data.meta import load_meta
from smolvla.policy.testing import write_tiny_backbone
from smolvla.train.config import InitConfig
from smolvla.train.initialize import build_policy


def test_backbone_init_loads_vlm_weights(tiny_dataset, tmp_path) -> None:
    pytest.importorskip("transformers")
    hf = write_tiny_backbone(tmp_path / "backbone")
    metas = [load_meta(tiny_dataset)]
    policy = build_policy(InitConfig(kind="backbone", path=str(hf), model_preset="tiny"), metas, seed=0)
    raw = load_file(str(hf / "model.safetensors"))
    ours = policy.model.state_dict()
    assert torch.equal(ours["vision.post_layernorm.weight"], raw["model.vision_model.post_layernorm.weight"])
    assert torch.equal(ours["text.layers.3.mlp.up_proj.weight"], raw["model.text_model.layers.3.mlp.up_proj.weight"])
    assert policy.config.camera_keys == ("observation.images.top", "observation.images.wrist")
    assert policy.tokenizer is not None
    # The policy's stats are the dataset's.
    want = torch.as_tensor(metas[0].stats["action"]["std"], dtype=torch.float32)
    assert torch.equal(policy.stats.get("action", "std"), want)


def test_backbone_dir_without_tokenizer(tiny_dataset, tmp_path) -> None:
    pytest.importorskip("transformers")
    hf = write_tiny_backbone(tmp_path / "backbone")
    (hf / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"backbone directory .* has no tokenizer.json"):
        build_policy(InitConfig(kind="backbone", path=str(hf)), [load_meta(tiny_dataset)], seed=0)


def test_checkpoint_init_with_a_damaged_config_names_the_file(tiny_dataset, tmp_path) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"ckpt/config\.json"):
        build_policy(InitConfig(kind="checkpoint", path=str(ckpt)), [load_meta(tiny_dataset)], seed=0)
