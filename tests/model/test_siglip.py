from __future__ import annotations

import pytest
import torch

from smolvla.model.config import get_config
from smolvla.model.siglip import VisionTower

transformers = pytest.importorskip("transformers")
from transformers.models.smolvlm.modeling_smolvlm import (  # noqa: E402
    SmolVLMVisionEmbeddings,
    SmolVLMVisionTransformer,
)


def _hf_vision_config(vc):
    return transformers.SmolVLMVisionConfig(
        hidden_size=vc.hidden,
        intermediate_size=vc.mlp,
        num_hidden_layers=vc.layers,
        num_attention_heads=vc.heads,
        image_size=vc.image_size,
        patch_size=vc.patch_size,
        layer_norm_eps=vc.layer_norm_eps,
        hidden_act="gelu_pytorch_tanh",
    )


def test_vision_tower_matches_transformers() -> None:
    vc = get_config("tiny").vision
    torch.manual_seed(0)
    ours = VisionTower(vc).eval()
    theirs = SmolVLMVisionTransformer(_hf_vision_config(vc)).eval()
    # Our state-dict keys are SmolVLM's vision_model keys verbatim.
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.rand(2, 3, vc.image_size, vc.image_size) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(pixel_values=x).last_hidden_state, rtol=1e-5, atol=1e-5)


def test_full_size_position_ids_are_row_major() -> None:
    # SmolVLM derives position ids by bucketising fractional patch coordinates; for full 512x512 images
    # with 16-pixel patches that must reduce to 0..1023, which our tower uses directly.
    vc = get_config("smolvla_base").vision
    cfg = _hf_vision_config(vc)
    cfg.hidden_size = 4
    emb = SmolVLMVisionEmbeddings(cfg)
    with torch.no_grad():
        emb.patch_embedding.weight.zero_()
        emb.patch_embedding.bias.zero_()
        emb.position_embedding.weight.copy_(torch.arange(vc.num_patches, dtype=torch.float32)[:, None].expand(-1, 4))
        pixels = torch.zeros(1, 3, vc.image_size, vc.image_size)
        ids = emb(pixels, torch.ones(1, vc.patches_per_side, vc.patches_per_side, dtype=torch.bool))[0, :, 0]
    assert torch.equal(ids, torch.arange(vc.num_patches, dtype=torch.float32))


def test_vision_tower_rejects_wrong_image_size() -> None:
    vc = get_config("tiny").vision
    with pytest.raises(ValueError, match=r"expects images \[B, 3, 64, 64\], got \(1, 3, 32, 32\)"):
        VisionTower(vc)(torch.zeros(1, 3, 32, 32))
