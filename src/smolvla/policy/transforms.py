"""Small composable tensor transforms between robot units and model units.

Each transform is a callable on one tensor. The policy composes them per feature:

    image  float32[B, 3, H, W] in [0, 1]  -> ResizeWithPad(S) -> ScaleToSigned()    -> float32[B, 3, S, S] in [-1, 1]
    state  float32[B, D] raw              -> Normalize(stats) -> PadLastDim(32)     -> float32[B, 32]
    action float32[B, T, D] raw           -> Normalize(stats) -> PadLastDim(32)     -> float32[B, T, 32]   (training)
    model  float32[B, T, 32]              -> CutLastDim(D)    -> Unnormalize(stats) -> float32[B, T, D] raw

The output chain is the input chain reversed with each step inverted (`inverse()`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

Transform = Callable[[torch.Tensor], torch.Tensor]


def resize_with_pad(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize to fit inside `size` x `size` keeping the aspect ratio, then pad with 0 on the left and top.

    This reproduces LeRobot's SmolVLA preprocessing exactly: the scale is max(H/size, W/size), the new sides
    are truncated with int() (not rounded), resampling is bilinear with align_corners=False and no
    antialiasing, and the padding goes on the left/top (so the image sits in the bottom-right corner).

    images: float32[B, 3, H, W] in [0, 1] -> float32[B, 3, size, size]; padding is 0 (black in [0, 1]).
    """
    if images.ndim != 4:
        raise ValueError(f"resize_with_pad expects float[B, C, H, W], got shape {tuple(images.shape)}")
    height, width = images.shape[-2:]
    ratio = max(width / size, height / size)
    new_h, new_w = int(height / ratio), int(width / ratio)
    resized = F.interpolate(images, size=(new_h, new_w), mode="bilinear", align_corners=False)
    pad_h, pad_w = max(0, size - new_h), max(0, size - new_w)
    return F.pad(resized, (pad_w, 0, pad_h, 0), value=0.0)


def frames_to_images(frames: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """Camera frames as robots and simulators give them, uint8[B, H, W, 3] (HWC, RGB), -> the policy's image
    layout float32[B, 3, H, W] in [0, 1]."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"camera frames must be uint8[B, H, W, 3], got {frames.dtype}{list(frames.shape)}")
    return torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float().div_(255.0)


@dataclass(frozen=True)
class ResizeWithPad:
    """`resize_with_pad` to a square of side `size` (the vision tower's image size)."""

    size: int

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return resize_with_pad(images, self.size)


@dataclass(frozen=True)
class ScaleToSigned:
    """[0, 1] -> [-1, 1], the range the SigLIP vision tower was trained on."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2.0 - 1.0

    def inverse(self) -> Transform:
        return lambda x: (x + 1.0) / 2.0


@dataclass(frozen=True)
class PadLastDim:
    """Zero-pad the last dimension up to `size` (state/action -> the model's 32 slots)."""

    size: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        dim = x.shape[-1]
        if dim > self.size:
            raise ValueError(f"cannot pad last dim {dim} down to {self.size}")
        return F.pad(x, (0, self.size - dim)) if dim < self.size else x

    def inverse(self, original: int) -> CutLastDim:
        return CutLastDim(original)


@dataclass(frozen=True)
class CutLastDim:
    """Keep the first `size` entries of the last dimension (undo `PadLastDim`)."""

    size: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] < self.size:
            raise ValueError(f"cannot cut last dim {x.shape[-1]} to a larger size {self.size}")
        return x[..., : self.size]


@dataclass(frozen=True, eq=False)
class Normalize:
    """(x - mean) / (std + eps) over the last dimension; mean/std float32[D]."""

    mean: torch.Tensor
    std: torch.Tensor
    eps: float = 1e-8

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check_last_dim(x, self.mean, "Normalize")
        return (x - self.mean.to(x)) / (self.std.to(x) + self.eps)

    def inverse(self) -> Unnormalize:
        return Unnormalize(self.mean, self.std, self.eps)


@dataclass(frozen=True, eq=False)
class Unnormalize:
    """x * std + mean, as LeRobot un-normalises (the inverse of `Normalize` up to its tiny eps)."""

    mean: torch.Tensor
    std: torch.Tensor
    eps: float = 1e-8

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check_last_dim(x, self.mean, "Unnormalize")
        return x * self.std.to(x) + self.mean.to(x)

    def inverse(self) -> Normalize:
        return Normalize(self.mean, self.std, self.eps)


@dataclass(frozen=True)
class Identity:
    """No-op, for features whose normalisation mode is "identity"."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def inverse(self) -> Identity:
        return self


class Compose:
    """Apply transforms left to right."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = tuple(transforms)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return f"Compose({list(self.transforms)!r})"


def _check_last_dim(x: torch.Tensor, ref: torch.Tensor, who: str) -> None:
    if x.shape[-1] != ref.shape[-1]:
        raise ValueError(f"{who}: last dim of input is {x.shape[-1]}, stats have {ref.shape[-1]}")
