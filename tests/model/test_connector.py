from __future__ import annotations

import pytest
import torch

from smolvla.model.config import get_config
from smolvla.model.connector import Connector, pixel_shuffle


def _naive_pixel_shuffle(x: torch.Tensor, s: int) -> torch.Tensor:
    b, n, d = x.shape
    side = int(n**0.5)
    m = side // s
    out = torch.empty(b, m * m, s * s * d)
    for i in range(m):
        for j in range(m):
            for di in range(s):
                for dj in range(s):
                    patch = (i * s + di) * side + (j * s + dj)
                    c = (di * s + dj) * d
                    out[:, i * m + j, c : c + d] = x[:, patch]
    return out


@pytest.mark.parametrize("scale", [2, 4])
def test_pixel_shuffle_matches_naive_loop(scale: int) -> None:
    x = torch.randn(2, 64, 5)
    assert torch.equal(pixel_shuffle(x, scale), _naive_pixel_shuffle(x, scale))


def test_pixel_shuffle_rejects_bad_grid() -> None:
    with pytest.raises(ValueError, match="square patch grid with side divisible by 4"):
        pixel_shuffle(torch.randn(1, 36, 3), 4)


def test_connector_matches_transformers() -> None:
    transformers = pytest.importorskip("transformers")
    from transformers.models.smolvlm.modeling_smolvlm import SmolVLMConnector

    cfg = get_config("tiny")
    hf_cfg = transformers.SmolVLMConfig(
        vision_config={"hidden_size": cfg.vision.hidden},
        text_config={"hidden_size": cfg.decoder.hidden},
        scale_factor=cfg.connector.scale_factor,
    )
    ours = Connector(cfg)
    theirs = SmolVLMConnector(hf_cfg)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(3, cfg.vision.num_patches, cfg.vision.hidden)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)
    assert ours(x).shape == (3, cfg.tokens_per_image, cfg.decoder.hidden)
