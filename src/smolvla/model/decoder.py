"""Llama-style decoder pieces (SmolLM2): RMSNorm, rotary embeddings, SwiGLU MLP, decoder layer, text model.

Dimension legend:
    B   batch
    T   tokens (P prefix tokens, S action tokens)
    D   model width (decoder.hidden for the VLM, expert_hidden for the action expert)
    H   query heads, KV key/value heads, hd head dim (same for the VLM and the expert)
    F   MLP width

Parameter names follow transformers' Llama (`self_attn.q_proj`, `mlp.gate_proj`, `input_layernorm`...)
so checkpoints map by prefix renames only. No biases anywhere in the decoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from smolvla.model.attention import attend
from smolvla.model.config import DecoderConfig


class RMSNorm(nn.Module):
    """x / rms(x) * weight, computed in float32 and cast back (as Llama does, so bf16 runs stay stable)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rope_angles(positions: Tensor, head_dim: int, theta: float) -> tuple[Tensor, Tensor]:
    """cos/sin tables for rotary embeddings, in float32.

    Frequency i (of head_dim/2) rotates by position / theta**(2i/hd): LeRobot's formulation (a division by
    the timescale), equal to Llama's multiplication by inv_freq up to rounding.

    Args:
        positions: int64[B, T].
    Returns:
        (cos, sin), each float32[B, 1, T, hd/2], broadcasting over heads.
    """
    exponents = torch.arange(head_dim // 2, dtype=torch.float32, device=positions.device) * (2.0 / head_dim)
    timescale = theta**exponents
    radians = positions.to(torch.float32)[..., None] / timescale
    return torch.cos(radians)[:, None], torch.sin(radians)[:, None]


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate the two halves of each head (non-interleaved, Llama's `rotate_half` layout), in float32.

    Args:
        x: float[B, H, T, hd]; cos, sin: float32[B, 1, T, hd/2].
    Returns:
        x's dtype and shape.
    """
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(x.dtype)


class SwiGLU(nn.Module):
    """down(silu(gate(x)) * up(x)); D -> F -> D."""

    def __init__(self, hidden: int, mlp: int):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, mlp, bias=False)
        self.up_proj = nn.Linear(hidden, mlp, bias=False)
        self.down_proj = nn.Linear(mlp, hidden, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class AttentionProjections(nn.Module):
    """q/k/v/o linears of one attention layer; `kv_in` is the width k_proj and v_proj read from.

    The VLM and the expert's self-attention layers read keys/values from the layer input (kv_in = D); the
    expert's cross-attention layers read them from the VLM's keys/values (kv_in = KV * hd).
    """

    def __init__(
        self, hidden: int, heads: int, kv_heads: int, head_dim: int, kv_in: int | None = None, eager: bool = False
    ):
        super().__init__()
        kv_in = hidden if kv_in is None else kv_in
        self.heads, self.kv_heads, self.head_dim, self.eager = heads, kv_heads, head_dim, eager
        self.q_proj = nn.Linear(hidden, heads * head_dim, bias=False)
        self.k_proj = nn.Linear(kv_in, kv_heads * head_dim, bias=False)
        self.v_proj = nn.Linear(kv_in, kv_heads * head_dim, bias=False)
        self.o_proj = nn.Linear(heads * head_dim, hidden, bias=False)

    def split(self, x: Tensor, heads: int) -> Tensor:
        """float[B, T, heads * hd] -> float[B, heads, T, hd]."""
        b, t, _ = x.shape
        return x.view(b, t, heads, self.head_dim).transpose(1, 2)


class DecoderLayer(nn.Module):
    """Pre-norm Llama layer: x + attn(norm(x)), then + mlp(norm(.))."""

    def __init__(
        self,
        hidden: int,
        heads: int,
        kv_heads: int,
        head_dim: int,
        mlp: int,
        eps: float,
        kv_in: int | None = None,
        eager: bool = False,
    ):
        super().__init__()
        self.input_layernorm = RMSNorm(hidden, eps)
        self.self_attn = AttentionProjections(hidden, heads, kv_heads, head_dim, kv_in, eager)
        self.post_attention_layernorm = RMSNorm(hidden, eps)
        self.mlp = SwiGLU(hidden, mlp)

    def keys_values(self, x: Tensor, cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor]:
        """Post-RoPE keys and values of this layer's input: x float[B, T, D] -> 2 x float[B, KV, T, hd]."""
        attn = self.self_attn
        h = self.input_layernorm(x)
        k = apply_rope(attn.split(attn.k_proj(h), attn.kv_heads), cos, sin)
        return k, attn.split(attn.v_proj(h), attn.kv_heads)

    def finish(self, x: Tensor, attn_out: Tensor) -> Tensor:
        """Residual add of the attention output float[B, T, H*hd], then the MLP block; -> float[B, T, D]."""
        x = x + self.self_attn.o_proj(attn_out)
        return x + self.mlp(self.post_attention_layernorm(x))

    def forward(
        self,
        x: Tensor,
        cos: Tensor,
        sin: Tensor,
        mask: Tensor | None,
        past: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One layer over x float[B, T, D]; `past` (post-RoPE keys/values float[B, KV, P, hd]) is prepended.

        Args:
            cos, sin: float32[B, 1, T, hd/2] for x's positions.
            mask: additive float[B, 1, T, P + T] (or None: full attention).
        Returns:
            (out float[B, T, D], k, v float[B, KV, T, hd] of x alone, for a cache).
        """
        attn = self.self_attn
        h = self.input_layernorm(x)
        q = apply_rope(attn.split(attn.q_proj(h), attn.heads), cos, sin)
        k = apply_rope(attn.split(attn.k_proj(h), attn.kv_heads), cos, sin)
        v = attn.split(attn.v_proj(h), attn.kv_heads)
        keys, values = (k, v) if past is None else (torch.cat([past[0], k], 2), torch.cat([past[1], v], 2))
        return self.finish(x, attend(q, keys, values, mask, attn.eager)), k, v


class TextModel(nn.Module):
    """The first `cfg.layers` layers of the SmolLM2 decoder, its token embedding and final norm."""

    def __init__(self, cfg: DecoderConfig, eager: bool = False):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden)
        self.layers = nn.ModuleList(
            DecoderLayer(cfg.hidden, cfg.heads, cfg.kv_heads, cfg.head_dim, cfg.mlp, cfg.rms_norm_eps, eager=eager)
            for _ in range(cfg.layers)
        )
        self.norm = RMSNorm(cfg.hidden, cfg.rms_norm_eps)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor | None) -> Tensor:
        """Plain decoder pass: x float[B, T, D] -> normed float[B, T, D] (the Llama model's last hidden state)."""
        for layer in self.layers:
            x, _, _ = layer(x, cos, sin, mask)
        return self.norm(x)

    def kv_cache(self, x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor | None) -> list[tuple[Tensor, Tensor]]:
        """Post-RoPE keys/values float[B, KV, T, hd] of every layer for inputs x float[B, T, D].

        The last layer's attention output and MLP are skipped: SmolVLA reads only its keys/values.
        """
        cache = []
        for layer in self.layers[:-1]:
            x, k, v = layer(x, cos, sin, mask)
            cache.append((k, v))
        cache.append(self.layers[-1].keys_values(x, cos, sin))
        return cache
