"""Connector from vision features to decoder tokens: pixel shuffle, then one bias-free linear.

Dimension legend:
    B   images
    N   vision patches, a row-major grid of n x n (n = image_size / patch_size)
    s   scale factor; the output grid is (n/s) x (n/s) tokens
    Dv  vision width, D decoder width

Pixel shuffle (space-to-depth, SmolVLM's convention): output token (i, j) of the coarse grid stacks the
s x s block of patches (i*s + di, j*s + dj) along channels, row offset di major, column offset dj minor:

    channel = di * s * Dv + dj * Dv + c

    patches (s = 2)            tokens
    p00 p01 | p02 p03          t00 = [p00 p01 p10 p11]   t01 = [p02 p03 p12 p13]
    p10 p11 | p12 p13    ->
    --------+--------          t10 = [p20 p21 p30 p31]   t11 = [p22 p23 p32 p33]
    p20 p21 | p22 p23
    p30 p31 | p32 p33
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from smolvla.model.config import ModelConfig


def pixel_shuffle(x: Tensor, scale: int) -> Tensor:
    """float[B, N, Dv] with N = n*n -> float[B, N / s^2, Dv * s^2] (see the module docstring for the order)."""
    b, n_patches, dv = x.shape
    # isqrt of an int: shapes are tensors while torch.onnx traces, and a tensor has no __round__.
    n = math.isqrt(int(n_patches))
    if n * n != n_patches or n % scale:
        raise ValueError(
            f"pixel_shuffle needs a square patch grid with side divisible by {scale}, got {n_patches} patches"
        )
    m = n // scale
    x = x.view(b, m, scale, m, scale, dv)  # (b, i, di, j, dj, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, m * m, scale * scale * dv)


class ModalityProjection(nn.Module):
    """The linear, wrapped so parameter names read `modality_projection.proj.weight` as in SmolVLM."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.proj = nn.Linear(in_features, out_features, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class Connector(nn.Module):
    """float[B, N, Dv] vision features -> float[B, tokens_per_image, D] decoder tokens."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.scale = cfg.connector.scale_factor
        self.modality_projection = ModalityProjection(cfg.connector_in_features, cfg.decoder.hidden)

    def forward(self, x: Tensor) -> Tensor:
        return self.modality_projection(pixel_shuffle(x, self.scale))
