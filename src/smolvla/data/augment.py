"""Image augmentation for training: random shifts (pad and crop) and colour jitter; off by default.

Applied to every camera of a training item, float32[3, H, W] in [0, 1], after decoding and before the
policy's resize. Random draws come from torch's global generator (saved in each checkpoint, so a resumed
run augments as an uninterrupted one); a worker process draws from its own seeded generator.

    shift       pixels: pad each side by `shift` (edge pixels repeated), crop a random H x W window
                (DrQ's random shift; the scene moves by up to +-shift pixels)
    brightness  x * U[1 - b, 1 + b]
    contrast    mean + (x - mean) * U[1 - c, 1 + c] (mean: the image's grey level)
    saturation  grey + (x - grey) * U[1 - s, 1 + s] (grey: per-pixel luminance)
Each camera of an item draws its own values. All-zero images (views a mixture dataset lacks) stay zero.
The strengths are a training option (`smolvla.train.config.AugmentConfig`, CLI --augment-*).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812

from smolvla.types import OBS_IMAGES_PREFIX

# ITU-R BT.601 luma weights, as torchvision's rgb_to_grayscale.
_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)


def _factor(strength: float) -> float:
    return 1.0 + (2.0 * float(torch.rand(())) - 1.0) * strength


def random_shift(img: torch.Tensor, shift: int) -> torch.Tensor:
    """float32[3, H, W] -> float32[3, H, W] moved by a random whole number of pixels in [-shift, shift]."""
    _, h, w = img.shape
    padded = F.pad(img[None], (shift, shift, shift, shift), mode="replicate")[0]
    top, left = (int(v) for v in torch.randint(0, 2 * shift + 1, (2,)))
    return padded[:, top : top + h, left : left + w]


def color_jitter(img: torch.Tensor, brightness: float, contrast: float, saturation: float) -> torch.Tensor:
    """float32[3, H, W] in [0, 1] -> the same with random brightness, contrast and saturation, clamped."""
    if brightness:
        img = img * _factor(brightness)
    if contrast:
        mean = (img * _LUMA).sum(0).mean()
        img = mean + (img - mean) * _factor(contrast)
    if saturation:
        grey = (img * _LUMA).sum(0, keepdim=True)
        img = grey + (img - grey) * _factor(saturation)
    return img.clamp(0.0, 1.0)


def augment_item(
    item: dict, shift: int = 0, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0
) -> dict:
    """A copy of `item` with every camera (keys "observation.images.<name>", float32[3, H, W]) augmented."""
    out = dict(item)
    for key, value in item.items():
        if key.startswith(OBS_IMAGES_PREFIX) and isinstance(value, torch.Tensor) and value.ndim == 3:
            img = random_shift(value, shift) if shift else value
            out[key] = color_jitter(img, brightness, contrast, saturation)
    return out
