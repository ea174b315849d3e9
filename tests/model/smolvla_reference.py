"""An uncached, LeRobot-style reference forward for SmolVLA, written independently of the model's fast path.

It follows LeRobot's `VLAFlowMatching.forward` / `SmolVLMWithExpertModel.forward` structure: prefix and
action tokens concatenated into one sequence with one 2D block mask and cumsum position ids; in
self-attention layers both streams share a single attention; in cross-attention layers the prefix attends
to itself and the expert's queries (positions restarted at 0) attend to its re-projected prefix keys and
values. Attention is an explicit softmax with finfo.min masking, RoPE LeRobot's `apply_rope` formula.
Only the per-layer linear/norm/MLP modules of the model are reused.
"""

from __future__ import annotations

import torch

from smolvla.model.attention import block_mask
from smolvla.model.smolvla import SmolVLAModel

# LeRobot's `apply_rope` default, used for the VLM and the expert alike (not the backbone's rope_theta).
LEROBOT_ROPE_WAVELENGTH = 10_000.0


def rope_blhd(x: torch.Tensor, positions: torch.Tensor, wavelength: float) -> torch.Tensor:
    """x float[B, L, H, D] rotated by positions int[B, L] (LeRobot's layout and formula)."""
    d_half = x.shape[-1] // 2
    timescale = wavelength ** ((2.0 / x.shape[-1]) * torch.arange(d_half, dtype=torch.float32))
    radians = (positions[..., None].float() / timescale)[..., None, :]
    x1, x2 = x.float().split(d_half, dim=-1)
    return torch.cat([x1 * radians.cos() - x2 * radians.sin(), x2 * radians.cos() + x1 * radians.sin()], -1)


def eager_attention(q, k, v, mask):
    """q float[B, L, H, D], k/v float[B, T, KV, D], mask bool[B, L, T] -> float[B, L, H*D]."""
    group = q.shape[2] // k.shape[2]
    k, v = k.repeat_interleave(group, 2), v.repeat_interleave(group, 2)
    scores = torch.einsum("blhd,bthd->bhlt", q, k) * q.shape[-1] ** -0.5
    scores = torch.where(mask[:, None], scores, torch.finfo(scores.dtype).min)
    out = torch.einsum("bhlt,bthd->blhd", scores.softmax(-1), v)
    return out.reshape(*out.shape[:2], -1)


def _qkv(layer, h):
    attn = layer.self_attn
    shape = (*h.shape[:2], -1, attn.head_dim)
    return attn.q_proj(h).view(shape), attn.k_proj(h).view(shape), attn.v_proj(h).view(shape)


def _finish(layer, x, attn_out):
    x = x + layer.self_attn.o_proj(attn_out)
    return x + layer.mlp(layer.post_attention_layernorm(x))


def reference_velocity(model: SmolVLAModel, obs, x_t: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
    """Velocity float32[B, S, A] from one joint prefix+suffix pass (nothing cached)."""
    cfg = model.config
    wl = LEROBOT_ROPE_WAVELENGTH
    prefix, valid, new_block = model.embed_prefix(*obs)
    suffix = model.embed_suffix(x_t, time)
    b, p = valid.shape
    ones = torch.ones(b, suffix.shape[1], dtype=torch.bool)
    mask = block_mask(torch.cat([valid, ones], 1), torch.cat([new_block, ones], 1))
    pos = torch.cumsum(torch.cat([valid, ones], 1), 1) - 1
    for i, (vlm, exp) in enumerate(zip(model.text.layers, model.expert.layers, strict=True)):
        qp, kp, vp = _qkv(vlm, vlm.input_layernorm(prefix))
        hs = exp.input_layernorm(suffix)
        if cfg.is_self_attn_layer(i):
            qs, ks, vs = _qkv(exp, hs)
            q = rope_blhd(torch.cat([qp, qs], 1), pos, wl)
            k = rope_blhd(torch.cat([kp, ks], 1), pos, wl)
            out = eager_attention(q, k, torch.cat([vp, vs], 1), mask)
            out_p, out_s = out[:, :p], out[:, p:]
        else:
            kp = rope_blhd(kp, pos[:, :p], wl)
            out_p = eager_attention(rope_blhd(qp, pos[:, :p], wl), kp, vp, mask[:, :p, :p])
            attn = exp.self_attn
            ek = attn.k_proj(kp.reshape(b, p, -1)).view(b, p, -1, attn.head_dim)
            ev = attn.v_proj(vp.reshape(b, p, -1)).view(b, p, -1, attn.head_dim)
            spos = pos[:, p:] - pos[:, p:].min(dim=1, keepdim=True).values
            qs = rope_blhd(attn.q_proj(hs).view(*hs.shape[:2], -1, attn.head_dim), spos, wl)
            out_s = eager_attention(qs, ek, ev, mask[:, p:, :p])
        prefix, suffix = _finish(vlm, prefix, out_p), _finish(exp, suffix, out_s)
    return model.action_out_proj(model.expert.norm(suffix)).float()


def reference_sample(model: SmolVLAModel, obs, noise: torch.Tensor, num_steps: int) -> torch.Tensor:
    """LeRobot 0.6.1's Euler loop (`time = 1.0 + step * dt` in Python floats) around `reference_velocity`."""
    dt = -1.0 / num_steps
    x = noise.clone()
    for step in range(num_steps):
        time = torch.tensor(1.0 + step * dt, dtype=torch.float32).expand(noise.shape[0])
        x = x + dt * reference_velocity(model, obs, x, time)
    return x
