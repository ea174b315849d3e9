"""Prefix-LM block masks and scaled-dot-product attention with grouped K/V heads.

Dimension legend:
    B   batch
    N   tokens of a sequence (Tq queries, Tk keys)
    H   query heads, KV key/value heads (H is a multiple of KV: grouped-query attention)
    hd  head dim

Block convention (big_vision / openpi / LeRobot): every token carries a flag "starts a new block".
Block ids are the running count of those flags; a token may attend to every valid token whose block id
is <= its own. SmolVLA's sequence is

    tokens      img0 ... img1 ... lang ... pad | state | a0 | a1 | a2 ...
    new block?  0    0   0    0   0    0   0   | 1     | 1  | 1  | 1
    block id    0    0   0    0   0    0   0   | 1     | 2  | 3  | 4

so images+language attend bidirectionally among themselves, the state token sees them and itself, and
each action token sees the prefix, the state and the actions up to and including itself:

              keys ->   prefix(0)  state(1)  a0(2)  a1(3)  a2(4)
    prefix(0)           x          .         .      .      .
    state(1)            x          x         .      .      .
    a0(2)               x          x         x      .      .
    a1(3)               x          x         x      x      .
    a2(4)               x          x         x      x      x

Padding (absent cameras, padded language tokens) is removed from both rows and columns.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def block_mask(pad_mask: Tensor, new_block: Tensor) -> Tensor:
    """Boolean attention mask of the prefix-LM block convention.

    Args:
        pad_mask: bool[B, N], True for real tokens, False for padding.
        new_block: bool[B, N] (or int), True where a token starts a new block.

    Returns:
        bool[B, N, N], entry [b, i, j] True when query i may attend to key j.
    """
    if pad_mask.ndim != 2 or new_block.shape != pad_mask.shape:
        raise ValueError(
            f"pad_mask and new_block must both be [B, N]; got {tuple(pad_mask.shape)} and {tuple(new_block.shape)}"
        )
    block_id = torch.cumsum(new_block.to(torch.int32), dim=1)
    causal = block_id[:, None, :] <= block_id[:, :, None]
    valid = pad_mask[:, None, :] & pad_mask[:, :, None]
    return causal & valid


def additive_mask(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """Turn a boolean mask [B, Tq, Tk] into an additive one [B, 1, Tq, Tk] for SDPA.

    Masked entries get the dtype's most negative finite value rather than -inf, as LeRobot does: a query
    row with no valid key (a padding token) then gets a uniform softmax instead of NaNs, and NaNs can
    never leak into the keys/values that later layers read from that position.
    """
    out = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    out.masked_fill_(~mask, torch.finfo(dtype).min)
    return out[:, None]


def attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, eager: bool = False) -> Tensor:
    """Softmax attention, scale hd**-0.5, with key/value heads shared by groups of query heads.

    Args:
        q: float[B, H, Tq, hd].
        k, v: float[B, KV, Tk, hd]; query head h reads key/value head h // (H // KV).
        mask: additive float[B, 1, Tq, Tk] from `additive_mask`, or None for full attention.
        eager: explicit matmul-softmax-matmul with scores and softmax in float32 (LeRobot's eager path,
            useful for bf16 comparisons) instead of torch's fused scaled_dot_product_attention.

    Returns:
        float[B, Tq, H * hd] (heads concatenated, ready for the output projection).
    """
    heads, kv_heads = q.shape[1], k.shape[1]
    if heads != kv_heads:
        # Explicit repeat: SDPA's enable_gqa falls back to a slower kernel on CPU (measured 10x here).
        k = k.repeat_interleave(heads // kv_heads, dim=1)
        v = v.repeat_interleave(heads // kv_heads, dim=1)
    if eager:
        scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * q.shape[-1] ** -0.5
        if mask is not None:
            scores = scores + mask
        out = torch.matmul(scores.softmax(dim=-1).to(v.dtype), v)
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (b, h, tq, hd)
    b, h, tq, hd = out.shape
    return out.transpose(1, 2).reshape(b, tq, h * hd)
