from __future__ import annotations

import pytest
import torch

from smolvla.model.attention import additive_mask, attend, block_mask


def test_block_mask_matches_prefix_lm_diagram() -> None:
    # tokens: p0 p1 pad | state | a0 a1
    valid = torch.tensor([[True, True, False, True, True, True]])
    new_block = torch.tensor([[False, False, False, True, True, True]])
    expected = torch.tensor(
        [
            [1, 1, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0],  # padding attends to nothing and nothing attends to it
            [1, 1, 0, 1, 0, 0],
            [1, 1, 0, 1, 1, 0],
            [1, 1, 0, 1, 1, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(block_mask(valid, new_block)[0], expected)


def test_block_mask_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"must both be \[B, N\]"):
        block_mask(torch.ones(1, 3, dtype=torch.bool), torch.ones(1, 4, dtype=torch.bool))


def _naive_attention(q, k, v, mask_bool):
    """Per-head loop with explicit K/V head sharing and LeRobot's finfo.min masking."""
    b, h, tq, hd = q.shape
    group = h // k.shape[1]
    out = torch.empty(b, tq, h * hd)
    for head in range(h):
        kh, vh = k[:, head // group], v[:, head // group]
        scores = q[:, head] @ kh.transpose(-1, -2) / hd**0.5
        scores = torch.where(mask_bool, scores, torch.finfo(scores.dtype).min)
        out[:, :, head * hd : (head + 1) * hd] = scores.softmax(-1) @ vh
    return out


def test_attend_gqa_and_mask_match_naive_loop() -> None:
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 6, 5, 8, generator=g)
    k = torch.randn(2, 2, 7, 8, generator=g)
    v = torch.randn(2, 2, 7, 8, generator=g)
    mask = torch.rand(2, 5, 7, generator=g) > 0.4
    mask[1, 2] = False  # a fully masked row: uniform weights, never NaN
    out = attend(q, k, v, additive_mask(mask, torch.float32))
    torch.testing.assert_close(out, _naive_attention(q, k, v, mask), rtol=1e-5, atol=1e-5)
    assert not out.isnan().any()
    torch.testing.assert_close(out[1, 2], v[1].mean(1).repeat_interleave(3, 0).flatten(), rtol=1e-5, atol=1e-5)
