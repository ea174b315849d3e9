"""Each transform on literal inputs; the output chain inverts the input chain."""

from __future__ import annotations

import pytest
import torch

from smolvla.policy.transforms import (
    Compose,
    CutLastDim,
    Identity,
    Normalize,
    PadLastDim,
    ResizeWithPad,
    ScaleToSigned,
    Unnormalize,
    resize_with_pad,
)


def test_resize_with_pad_keeps_aspect_and_pads_left_top() -> None:
    img = torch.arange(8, dtype=torch.float32).reshape(1, 1, 2, 4) / 8  # H=2, W=4
    out = resize_with_pad(img, 4)
    assert out.shape == (1, 1, 4, 4)
    # Width already fits, so the content is unchanged and sits in the bottom rows; top rows are padding 0.
    assert torch.equal(out[0, 0, :2], torch.zeros(2, 4))
    assert torch.allclose(out[0, 0, 2:], img[0, 0])


def test_resize_with_pad_truncates_sizes_and_pads_left() -> None:
    # H=5, W=3 into 4: ratio = max(3/4, 5/4) = 1.25 -> new (int(4.0), int(2.4)) = (4, 2); 2 zero columns on the left.
    img = torch.ones(2, 3, 5, 3)
    out = resize_with_pad(img, 4)
    assert out.shape == (2, 3, 4, 4)
    assert torch.equal(out[..., :2], torch.zeros(2, 3, 4, 2))
    assert torch.allclose(out[..., 2:], torch.ones(2, 3, 4, 2))


def test_resize_with_pad_matches_bilinear_no_align_corners() -> None:
    img = torch.rand(1, 3, 30, 40, generator=torch.Generator().manual_seed(0))
    out = ResizeWithPad(16)(img)
    ref = torch.nn.functional.interpolate(img, size=(12, 16), mode="bilinear", align_corners=False)
    assert torch.equal(out[..., 4:, :], ref)
    assert torch.equal(out[..., :4, :], torch.zeros(1, 3, 4, 16))


def test_resize_with_pad_rejects_3d() -> None:
    with pytest.raises(ValueError, match=r"float\[B, C, H, W\]"):
        resize_with_pad(torch.zeros(3, 4, 4), 4)


def test_scale_to_signed_literal() -> None:
    x = torch.tensor([0.0, 0.25, 1.0])
    assert torch.equal(ScaleToSigned()(x), torch.tensor([-1.0, -0.5, 1.0]))
    assert torch.equal(ScaleToSigned().inverse()(ScaleToSigned()(x)), x)


def test_pad_and_cut_last_dim() -> None:
    x = torch.tensor([[1.0, 2.0]])
    padded = PadLastDim(4)(x)
    assert torch.equal(padded, torch.tensor([[1.0, 2.0, 0.0, 0.0]]))
    assert torch.equal(PadLastDim(4).inverse(2)(padded), x)
    assert torch.equal(CutLastDim(2)(padded), x)
    with pytest.raises(ValueError, match="cannot pad last dim 5 down to 4"):
        PadLastDim(4)(torch.zeros(5))


def test_normalize_literal_and_inverse() -> None:
    norm = Normalize(torch.tensor([1.0, -2.0]), torch.tensor([2.0, 0.5]), eps=0.0)
    x = torch.tensor([[3.0, -1.0]])
    assert torch.equal(norm(x), torch.tensor([[1.0, 2.0]]))
    assert torch.equal(norm.inverse()(norm(x)), x)
    assert isinstance(norm.inverse(), Unnormalize)
    with pytest.raises(ValueError, match="last dim of input is 3, stats have 2"):
        norm(torch.zeros(1, 3))


def test_normalize_uses_eps_like_lerobot() -> None:
    norm = Normalize(torch.zeros(1), torch.zeros(1), eps=1e-8)
    assert torch.allclose(norm(torch.tensor([1e-8])), torch.tensor([1.0]))


def test_output_chain_mirrors_input_chain() -> None:
    mean, std = torch.tensor([0.5, 1.0, -1.0]), torch.tensor([2.0, 0.1, 3.0])
    chain_in = Compose([Normalize(mean, std), PadLastDim(32)])
    chain_out = Compose([CutLastDim(3), Normalize(mean, std).inverse()])
    x = torch.randn(2, 10, 3)
    y = chain_in(x)
    assert y.shape == (2, 10, 32) and torch.equal(y[..., 3:], torch.zeros(2, 10, 29))
    assert torch.allclose(chain_out(y), x, atol=1e-6)
    assert torch.equal(Identity()(x), x)


def test_frames_to_images_layout_and_range():
    import numpy as np

    from smolvla.policy.transforms import frames_to_images

    frames = np.zeros((1, 2, 3, 3), np.uint8)
    frames[0, 1, 2] = [255, 51, 0]  # pixel (row 1, col 2)
    out = frames_to_images(frames)
    assert out.shape == (1, 3, 2, 3) and out.dtype == torch.float32
    assert out[0, :, 1, 2].tolist() == pytest.approx([1.0, 0.2, 0.0])
    with pytest.raises(ValueError, match=r"camera frames must be uint8\[B, H, W, 3\], got float32\[1, 2, 3, 3\]"):
        frames_to_images(frames.astype(np.float32))
