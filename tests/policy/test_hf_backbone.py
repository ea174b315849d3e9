"""Reading a SmolVLM2 backbone dir: config mapping, key renames, dropped layers verified then removed."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from smolvla.model.config import get_config
from smolvla.policy.hf_backbone import (
    backbone_state_dict,
    known_backbone_config,
    load_backbone_config,
    model_config_from_hf,
)


def test_config_maps_to_tiny_preset(tiny_hf_dir: Path) -> None:
    tiny = get_config("tiny")
    assert load_backbone_config(tiny_hf_dir, num_vlm_layers=4, base=tiny) == tiny


def test_published_smolvlm2_config_maps_to_smolvla_base() -> None:
    # The fields of HuggingFaceTB/SmolVLM2-500M-Video-Instruct's config.json that fix shapes.
    hf = {
        "scale_factor": 4,
        "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                          "num_attention_heads": 12, "image_size": 512, "patch_size": 16},
        "text_config": {"hidden_size": 960, "intermediate_size": 2560, "num_hidden_layers": 32,
                        "num_attention_heads": 15, "num_key_value_heads": 5, "vocab_size": 49280,
                        "rms_norm_eps": 1e-5, "rope_theta": 100000},
    }  # fmt: skip
    assert model_config_from_hf(hf, num_vlm_layers=16) == get_config("smolvla_base")
    assert known_backbone_config("HuggingFaceTB/SmolVLM2-500M-Video-Instruct", 16) == get_config("smolvla_base")
    assert known_backbone_config("someone/else", 16) is None


def test_unsupported_activation_is_an_error() -> None:
    hf = {"text_config": {"hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1,
                          "num_attention_heads": 1, "vocab_size": 8, "hidden_act": "relu"}}  # fmt: skip
    with pytest.raises(ValueError, match="unsupported activations"):
        model_config_from_hf(hf, 1)


def test_state_dict_keeps_first_layers_in_our_names(tiny_hf_dir: Path) -> None:
    cfg = get_config("tiny")
    raw = load_file(str(tiny_hf_dir / "model.safetensors"))
    ours = backbone_state_dict(tiny_hf_dir, cfg)
    assert "text.layers.3.mlp.up_proj.weight" in ours and "text.layers.4.mlp.up_proj.weight" not in ours
    assert not any(k.startswith("lm_head") for k in ours)
    assert torch.equal(
        ours["connector.modality_projection.proj.weight"], raw["model.connector.modality_projection.proj.weight"]
    )
    assert torch.equal(ours["vision.post_layernorm.weight"], raw["model.vision_model.post_layernorm.weight"])
    assert torch.equal(ours["text.embed_tokens.weight"], raw["model.text_model.embed_tokens.weight"])


def _rewrite(src: Path, dst: Path, edit) -> Path:
    dst.mkdir()
    tensors = load_file(str(src / "model.safetensors"))
    edit(tensors)
    save_file(tensors, str(dst / "model.safetensors"))
    (dst / "config.json").write_text((src / "config.json").read_text())
    return dst


def test_missing_dropped_layer_is_an_error(tiny_hf_dir: Path, tmp_path: Path) -> None:
    def drop_layer_7(t: dict) -> None:
        for k in [k for k in t if k.startswith("model.text_model.layers.7.")]:
            del t[k]

    bad = _rewrite(tiny_hf_dir, tmp_path / "bad", drop_layer_7)
    with pytest.raises(ValueError, match=r"missing \[7\]"):
        backbone_state_dict(bad, get_config("tiny"))


def test_unexpected_key_and_lm_head_shape(tiny_hf_dir: Path, tmp_path: Path) -> None:
    bad = _rewrite(tiny_hf_dir, tmp_path / "extra", lambda t: t.update({"model.extra.weight": torch.zeros(1)}))
    with pytest.raises(ValueError, match=r"unexpected keys \['model.extra.weight'\]"):
        backbone_state_dict(bad, get_config("tiny"))
    wrong_vocab = replace(get_config("tiny"), decoder=replace(get_config("tiny").decoder, vocab_size=500))
    with pytest.raises(ValueError, match=r"lm_head.weight has shape \(512, 64\), expected \(500, 64\)"):
        backbone_state_dict(tiny_hf_dir, wrong_vocab)


def test_corrupt_safetensors_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage")
    (tmp_path / "config.json").write_text(json.dumps({}))
    with pytest.raises(ValueError, match="corrupt or unreadable safetensors file"):
        backbone_state_dict(tmp_path, get_config("tiny"))


def test_loaded_backbone_matches_transformers_outputs(tiny_hf_dir: Path) -> None:
    """Our vision tower + connector and text embeddings, loaded from the dir, reproduce transformers' model."""
    transformers = pytest.importorskip("transformers")
    from smolvla.model.smolvla import SmolVLAModel
    from smolvla.policy.hf_backbone import load_backbone_weights

    hf = transformers.SmolVLMForConditionalGeneration.from_pretrained(tiny_hf_dir).eval()
    cfg = get_config("tiny")
    ours = SmolVLAModel(cfg).eval()
    load_backbone_weights(ours, tiny_hf_dir, cfg)
    pixels = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        want = hf.model.connector(hf.model.vision_model(pixel_values=pixels).last_hidden_state)
        got = ours.connector(ours.vision(pixels))
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        tokens = torch.tensor([[1, 5, 7, 9]])
        torch.testing.assert_close(ours.text.embed_tokens(tokens), hf.model.text_model.embed_tokens(tokens))


def test_backbone_load_leaves_expert_untouched(tiny_hf_dir: Path) -> None:
    from smolvla.model.smolvla import SmolVLAModel
    from smolvla.policy.hf_backbone import load_backbone_weights

    cfg = get_config("tiny")
    model = SmolVLAModel(cfg)
    before = model.expert.norm.weight.clone(), model.state_proj.weight.clone()
    load_backbone_weights(model, tiny_hf_dir, cfg)
    assert torch.equal(model.expert.norm.weight, before[0]) and torch.equal(model.state_proj.weight, before[1])


def test_policy_from_backbone_trains_on_pretrained_vlm(tiny_hf_dir: Path) -> None:
    from smolvla.policy.hf_backbone import policy_from_backbone
    from smolvla.policy.normalize import NormStats, identity_stats
    from smolvla.policy.testing import make_fake_batch

    stats = NormStats({"observation.state": identity_stats(3), "action": identity_stats(2)})
    base = get_config("tiny", max_lang_tokens=48)
    policy = policy_from_backbone(
        tiny_hf_dir, camera_keys=("observation.images.top",), state_dim=3, action_dim=2, stats=stats,
        num_vlm_layers=4, base=base,
    )  # fmt: skip
    raw = load_file(str(tiny_hf_dir / "model.safetensors"))
    assert torch.equal(policy.model.state_dict()["text.norm.weight"], raw["model.text_model.norm.weight"])
    assert policy.tokenizer is not None and policy.config.chunk_size == 10
    loss, _ = policy.compute_loss(make_fake_batch(policy.config, with_actions=True))
    assert torch.isfinite(loss)
