from __future__ import annotations

import pytest
import torch

from smolvla.model.attention import additive_mask, block_mask
from smolvla.model.config import get_config
from smolvla.model.decoder import DecoderLayer, RMSNorm, TextModel, apply_rope, rope_angles

transformers = pytest.importorskip("transformers")
from transformers.models.llama import modeling_llama  # noqa: E402

DEC = get_config("tiny").decoder
# SmolLM2's RoPE base: any base tests the parity with Llama's rotary embedding (SmolVLA itself uses
# `ModelConfig.rope_wavelength`).
ROPE_THETA = 100_000.0


def _llama_config(num_layers: int = DEC.layers):
    cfg = transformers.LlamaConfig(
        hidden_size=DEC.hidden,
        intermediate_size=DEC.mlp,
        num_hidden_layers=num_layers,
        num_attention_heads=DEC.heads,
        num_key_value_heads=DEC.kv_heads,
        head_dim=DEC.head_dim,
        rms_norm_eps=DEC.rms_norm_eps,
        rope_theta=ROPE_THETA,
        vocab_size=DEC.vocab_size,
    )
    cfg._attn_implementation = "eager"
    return cfg


def _positions(b: int, t: int) -> torch.Tensor:
    # Non-trivial positions: a repeated one (padding) and an offset start, as the prefix produces.
    pos = torch.arange(t).repeat(b, 1) + torch.arange(b)[:, None] * 3
    pos[0, 2] = pos[0, 1]
    return pos


def test_rms_norm_matches_llama() -> None:
    ours = RMSNorm(DEC.hidden, DEC.rms_norm_eps)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 1.5)
    theirs = modeling_llama.LlamaRMSNorm(DEC.hidden, eps=DEC.rms_norm_eps)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 5, DEC.hidden) * 3
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-6, atol=1e-6)


def test_rope_matches_llama_rotary() -> None:
    pos = _positions(2, 9)
    x = torch.randn(2, DEC.heads, 9, DEC.head_dim)
    cos, sin = rope_angles(pos, DEC.head_dim, ROPE_THETA)
    ours = apply_rope(x, cos, sin)
    hf_cos, hf_sin = modeling_llama.LlamaRotaryEmbedding(_llama_config())(x, pos)
    theirs, _ = modeling_llama.apply_rotary_pos_emb(x, x, hf_cos, hf_sin)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    # Position 0 is the identity rotation.
    torch.testing.assert_close(
        apply_rope(x[:, :, :1], cos[:1, :, :1].expand(2, -1, -1, -1), sin[:1, :, :1]), x[:, :, :1]
    )


def test_decoder_layer_matches_llama_with_prefix_lm_mask() -> None:
    torch.manual_seed(0)
    ours = DecoderLayer(DEC.hidden, DEC.heads, DEC.kv_heads, DEC.head_dim, DEC.mlp, DEC.rms_norm_eps)
    llama_cfg = _llama_config()
    theirs = modeling_llama.LlamaDecoderLayer(llama_cfg, layer_idx=0)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    b, t = 2, 8
    x = torch.randn(b, t, DEC.hidden)
    pos = _positions(b, t)
    valid = torch.ones(b, t, dtype=torch.bool)
    valid[0, 2] = False
    new_block = torch.zeros(b, t, dtype=torch.bool)
    new_block[:, 5:] = True
    mask = additive_mask(block_mask(valid, new_block), torch.float32)
    cos, sin = rope_angles(pos, DEC.head_dim, ROPE_THETA)
    out, _, _ = ours(x, cos, sin, mask)
    hf_pe = modeling_llama.LlamaRotaryEmbedding(llama_cfg)(x, pos)
    with torch.no_grad():
        ref = theirs(x, attention_mask=mask, position_ids=pos, position_embeddings=hf_pe)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_text_model_matches_llama_model() -> None:
    torch.manual_seed(0)
    ours = TextModel(DEC).eval()
    theirs = modeling_llama.LlamaModel(_llama_config()).eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    b, t = 2, 6
    ids = torch.randint(0, DEC.vocab_size, (b, t))
    pos = torch.arange(t).repeat(b, 1)
    causal = additive_mask(
        block_mask(torch.ones(b, t, dtype=torch.bool), torch.ones(b, t, dtype=torch.bool)), torch.float32
    )
    cos, sin = rope_angles(pos, DEC.head_dim, ROPE_THETA)
    with torch.no_grad():
        out = ours(ours.embed_tokens(ids), cos, sin, causal)
        ref = theirs(input_ids=ids, position_ids=pos).last_hidden_state
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_kv_cache_matches_full_layers() -> None:
    torch.manual_seed(0)
    model = TextModel(DEC).eval()
    b, t = 2, 5
    x = torch.randn(b, t, DEC.hidden)
    cos, sin = rope_angles(torch.arange(t).repeat(b, 1), DEC.head_dim, ROPE_THETA)
    with torch.no_grad():
        cache = model.kv_cache(x, cos, sin, None)
        h = x
        for layer, (k, v) in zip(model.layers, cache, strict=True):
            h, k_ref, v_ref = layer(h, cos, sin, None)
            torch.testing.assert_close(k, k_ref)
            torch.testing.assert_close(v, v_ref)
    assert len(cache) == DEC.layers and cache[0][0].shape == (b, DEC.kv_heads, t, DEC.head_dim)
