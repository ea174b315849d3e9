"""SigLIP-style vision tower (the SmolVLM2 vision encoder) for fixed-size square images.

Dimension legend:
    B   images (batch x cameras, flattened)
    C   3 colour channels
    I   image side (vision.image_size), p patch side, N = (I / p)^2 patches
    D   vision width (vision.hidden), F MLP width, H heads, hd = D / H

Parameter names follow transformers' SmolVLM vision model (`embeddings.patch_embedding`,
`encoder.layers.{i}.self_attn.out_proj`, `post_layernorm`...).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from smolvla.model.attention import attend
from smolvla.model.config import VisionConfig


class VisionEmbeddings(nn.Module):
    """Non-overlapping patches -> linear (as a stride-p conv) + learned position embedding per patch."""

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.patch_embedding = nn.Conv2d(3, cfg.hidden, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.position_embedding = nn.Embedding(cfg.num_patches, cfg.hidden)

    def forward(self, pixels: Tensor) -> Tensor:
        """float[B, C, I, I] -> float[B, N, D] (patches in row-major order)."""
        x = self.patch_embedding(pixels).flatten(2).transpose(1, 2)
        # SmolVLM's bucketised NaViT position ids reduce to 0..N-1 for full, unpadded images.
        return x + self.position_embedding.weight


class VisionAttention(nn.Module):
    """Bidirectional multi-head self-attention with biased q/k/v/out projections."""

    def __init__(self, cfg: VisionConfig, eager: bool = False):
        super().__init__()
        self.heads = cfg.heads
        self.eager = eager
        self.q_proj = nn.Linear(cfg.hidden, cfg.hidden)
        self.k_proj = nn.Linear(cfg.hidden, cfg.hidden)
        self.v_proj = nn.Linear(cfg.hidden, cfg.hidden)
        self.out_proj = nn.Linear(cfg.hidden, cfg.hidden)

    def forward(self, x: Tensor) -> Tensor:
        """float[B, N, D] -> float[B, N, D]."""
        b, n, d = x.shape
        shape = (b, n, self.heads, d // self.heads)
        q = self.q_proj(x).view(shape).transpose(1, 2)  # (b, h, n, hd)
        k = self.k_proj(x).view(shape).transpose(1, 2)
        v = self.v_proj(x).view(shape).transpose(1, 2)
        return self.out_proj(attend(q, k, v, eager=self.eager))


class VisionMLP(nn.Module):
    """fc1 -> gelu (tanh approximation) -> fc2."""

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.fc1 = nn.Linear(cfg.hidden, cfg.mlp)
        self.fc2 = nn.Linear(cfg.mlp, cfg.hidden)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class VisionLayer(nn.Module):
    """Pre-norm transformer block: x + attn(ln1(x)), then + mlp(ln2(.))."""

    def __init__(self, cfg: VisionConfig, eager: bool = False):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.self_attn = VisionAttention(cfg, eager)
        self.layer_norm2 = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.mlp = VisionMLP(cfg)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class VisionEncoder(nn.Module):
    """The stack of vision layers (a module of its own so parameter names read `encoder.layers.{i}`)."""

    def __init__(self, cfg: VisionConfig, eager: bool = False):
        super().__init__()
        self.layers = nn.ModuleList(VisionLayer(cfg, eager) for _ in range(cfg.layers))

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class VisionTower(nn.Module):
    """Images in [-1, 1] -> per-patch features after the post LayerNorm (`eager`: see attention.attend)."""

    def __init__(self, cfg: VisionConfig, eager: bool = False):
        super().__init__()
        self.image_size = cfg.image_size
        self.embeddings = VisionEmbeddings(cfg)
        self.encoder = VisionEncoder(cfg, eager)
        self.post_layernorm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)

    def forward(self, pixels: Tensor) -> Tensor:
        """float[B, 3, I, I] in [-1, 1] -> float[B, N, D]."""
        if pixels.ndim != 4 or pixels.shape[1:] != (3, self.image_size, self.image_size):
            raise ValueError(
                f"vision tower expects images [B, 3, {self.image_size}, {self.image_size}], got {tuple(pixels.shape)}"
            )
        return self.post_layernorm(self.encoder(self.embeddings(pixels)))
