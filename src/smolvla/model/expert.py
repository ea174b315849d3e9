"""The flow-matching action expert: a narrower Llama stack interleaving self- and cross-attention.

Dimension legend:
    B   batch
    P   prefix tokens (cameras, language, state), S action tokens (chunk)
    De  expert width (expert_hidden), F expert MLP width
    H   query heads, KV key/value heads, hd head dim (shared with the VLM)

Expert layer i pairs with VLM layer i and reads that layer's prefix keys/values (post-RoPE):

    self-attention layer (i % n == 0)          cross-attention layer (otherwise)
    K = [K_vlm(prefix) ; k_proj(x)]            K = k_proj(K_vlm(prefix))   (Linear KV*hd -> KV*hd)
    V = [V_vlm(prefix) ; v_proj(x)]            V = v_proj(V_vlm(prefix))
    q = rope(q_proj(x), P_valid + 0..S-1)      q = rope(q_proj(x), 0..S-1)  (positions restart at 0)
    mask: prefix padding + causal over S       mask: prefix padding only

In the cross layers the projected keys are not rotated again (LeRobot's semantics): they carry the VLM
rotation of their prefix positions. Both kinds depend on the prefix only through `ExpertContext`, which
is built once per action chunk, so each denoising step runs the expert alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from smolvla.model.attention import attend
from smolvla.model.config import ModelConfig
from smolvla.model.decoder import DecoderLayer, RMSNorm, apply_rope


@dataclass
class ExpertContext:
    """Everything the expert needs from the prefix, fixed for a whole action chunk.

    kv[i]: per layer, float[B, KV, P, hd] keys and values: the VLM's post-RoPE prefix keys/values for
        self-attention layers, the expert-projected ones for cross-attention layers.
    self_cos/self_sin: float32[B, 1, S, hd/2], RoPE of the action positions continuing after the prefix.
    cross_cos/cross_sin: float32[B, 1, S, hd/2], RoPE of positions 0..S-1.
    self_mask: additive float[B, 1, S, P + S]; cross_mask: additive float[B, 1, S, P].
    """

    kv: list[tuple[Tensor, Tensor]]
    self_cos: Tensor
    self_sin: Tensor
    cross_cos: Tensor
    cross_sin: Tensor
    self_mask: Tensor
    cross_mask: Tensor


class ActionExpert(nn.Module):
    """`decoder.layers` expert layers (no token embedding) and a final RMSNorm."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        dec = cfg.decoder
        self.cross = [not cfg.is_self_attn_layer(i) for i in range(dec.layers)]
        self.layers = nn.ModuleList(
            DecoderLayer(
                cfg.expert_hidden,
                dec.heads,
                dec.kv_heads,
                dec.head_dim,
                cfg.expert_mlp,
                dec.rms_norm_eps,
                kv_in=cfg.kv_width if cross else None,
                eager=cfg.attention == "eager",
            )
            for cross in self.cross
        )
        self.norm = RMSNorm(cfg.expert_hidden, dec.rms_norm_eps)

    def project_prefix(self, prefix_kv: list[tuple[Tensor, Tensor]]) -> list[tuple[Tensor, Tensor]]:
        """Per-layer context keys/values from the VLM's prefix cache (2 x float[B, KV, P, hd] per layer).

        Cross-attention layers get their k/v projections applied here, once per chunk.
        """
        out = []
        for layer, cross, (k, v) in zip(self.layers, self.cross, prefix_kv, strict=True):
            if cross:
                attn = layer.self_attn
                k = attn.split(attn.k_proj(_merge_heads(k)), attn.kv_heads)
                v = attn.split(attn.v_proj(_merge_heads(v)), attn.kv_heads)
            out.append((k, v))
        return out

    def forward(self, x: Tensor, ctx: ExpertContext) -> Tensor:
        """Action tokens float[B, S, De] -> final-normed float[B, S, De]."""
        for layer, cross, kv in zip(self.layers, self.cross, ctx.kv, strict=True):
            if cross:
                attn = layer.self_attn
                q = attn.split(attn.q_proj(layer.input_layernorm(x)), attn.heads)
                q = apply_rope(q, ctx.cross_cos, ctx.cross_sin)
                x = layer.finish(x, attend(q, kv[0], kv[1], ctx.cross_mask, attn.eager))
            else:
                x, _, _ = layer(x, ctx.self_cos, ctx.self_sin, ctx.self_mask, past=kv)
        return self.norm(x)


def _merge_heads(x: Tensor) -> Tensor:
    """float[B, KV, P, hd] -> float[B, P, KV * hd] (the layout the VLM's k/v projections produced)."""
    b, kv, p, hd = x.shape
    return x.transpose(1, 2).reshape(b, p, kv * hd)


def expert_positions(prefix_valid: Tensor, num_actions: int) -> tuple[Tensor, Tensor]:
    """Action-token positions for self- and cross-attention layers.

    Args:
        prefix_valid: bool[B, P].
    Returns:
        (self_pos, cross_pos), each int64[B, S]: self_pos continues after the valid prefix tokens
        (LeRobot's cumsum(valid) - 1 over prefix + actions); cross_pos restarts at 0.
    """
    steps = torch.arange(num_actions, device=prefix_valid.device)
    offset = prefix_valid.long().sum(dim=1, keepdim=True)  # int64 first: ONNX's ReduceSum refuses bool
    return offset + steps, steps.expand(prefix_valid.shape[0], -1)
