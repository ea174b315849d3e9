from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from model_batch import Batch, make_batch
from smolvla_reference import reference_sample, reference_velocity

from smolvla.model.config import get_config
from smolvla.model.decoder import rope_angles
from smolvla.model.expert import expert_positions
from smolvla.model.smolvla import SmolVLAModel, build_random, lm_head_parameters

TOL = {"rtol": 1e-4, "atol": 1e-4}


def test_full_size_parameter_count_matches_lerobot() -> None:
    cfg = get_config("smolvla_base")
    with torch.device("meta"):
        model = SmolVLAModel(cfg)
    ours = sum(p.numel() for p in model.parameters())
    # LeRobot counts the untied 49280 x 960 lm_head that SmolVLA never uses; we do not hold it.
    assert lm_head_parameters(cfg) == 49_280 * 960
    assert ours + lm_head_parameters(cfg) == 450_046_176
    assert sum(p.numel() for p in model.expert.parameters()) == 98_245_840  # spec: 98.2M


def test_state_dict_layout(tiny_model: SmolVLAModel) -> None:
    cfg = tiny_model.config
    sd = tiny_model.state_dict()
    expected_some = [
        "vision.embeddings.patch_embedding.weight",
        "vision.embeddings.position_embedding.weight",
        "vision.encoder.layers.1.self_attn.out_proj.bias",
        "vision.encoder.layers.0.mlp.fc1.weight",
        "vision.post_layernorm.bias",
        "connector.modality_projection.proj.weight",
        "text.embed_tokens.weight",
        "text.layers.3.self_attn.o_proj.weight",
        "text.layers.0.mlp.gate_proj.weight",
        "text.norm.weight",
        "expert.layers.1.post_attention_layernorm.weight",
        "expert.norm.weight",
        "action_time_mlp_out.bias",
    ]
    assert all(k in sd for k in expected_some)
    assert not any(k.endswith("lm_head.weight") for k in sd)
    assert not any(k.startswith(("text.", "expert.")) and k.endswith("bias") for k in sd)
    kv = cfg.kv_width
    assert sd["expert.layers.0.self_attn.k_proj.weight"].shape == (kv, cfg.expert_hidden)  # self-attention
    assert sd["expert.layers.1.self_attn.k_proj.weight"].shape == (kv, kv)  # cross-attention
    assert sd["expert.layers.1.self_attn.q_proj.weight"].shape == (
        cfg.decoder.heads * cfg.decoder.head_dim,
        cfg.expert_hidden,
    )
    assert sd["connector.modality_projection.proj.weight"].shape == (cfg.decoder.hidden, cfg.connector_in_features)


@torch.no_grad()
def test_cached_velocity_matches_uncached_joint_forward(tiny_model: SmolVLAModel, batch: Batch) -> None:
    ctx = tiny_model.prefill(*batch.obs())
    time = torch.tensor([0.3, 0.9])
    for x in (batch.actions, torch.randn_like(batch.actions)):
        torch.testing.assert_close(
            tiny_model.velocity(ctx, x, time), reference_velocity(tiny_model, batch.obs(), x, time), **TOL
        )


@torch.no_grad()
def test_sample_actions_matches_uncached_euler_loop(tiny_model: SmolVLAModel, batch: Batch) -> None:
    noise = torch.randn_like(batch.actions)
    original = noise.clone()
    out = tiny_model.sample_actions(*batch.obs(), noise=noise, num_steps=3)
    assert torch.equal(noise, original)
    assert out.dtype == torch.float32 and out.shape == batch.actions.shape
    torch.testing.assert_close(out, reference_sample(tiny_model, batch.obs(), noise, 3), **TOL)
    # Default step count comes from the config.
    torch.testing.assert_close(
        tiny_model.sample_actions(*batch.obs(), noise=noise), reference_sample(tiny_model, batch.obs(), noise, 4), **TOL
    )


def test_compute_loss_matches_reference_and_is_deterministic(tiny_model: SmolVLAModel, batch: Batch) -> None:
    noise = torch.randn_like(batch.actions)
    time = torch.tensor([0.25, 0.8])
    loss = tiny_model.compute_loss(*batch.obs(), batch.actions, noise=noise, time=time)
    assert loss.shape == batch.actions.shape and loss.dtype == torch.float32
    assert torch.equal(loss, tiny_model.compute_loss(*batch.obs(), batch.actions, noise=noise, time=time))
    with torch.no_grad():
        x_t = time[:, None, None] * noise + (1 - time[:, None, None]) * batch.actions
        v = reference_velocity(tiny_model, batch.obs(), x_t, time)
    torch.testing.assert_close(loss, (v - (noise - batch.actions)) ** 2, **TOL)
    other = tiny_model.compute_loss(*batch.obs(), batch.actions, noise=noise, time=torch.tensor([0.5, 0.5]))
    assert not torch.allclose(loss, other)
    # Gradients reach the expert, the state projection and the VLM.
    loss.mean().backward()
    for p in (
        tiny_model.expert.layers[1].self_attn.k_proj.weight,
        tiny_model.state_proj.weight,
        tiny_model.text.layers[0].mlp.up_proj.weight,
    ):
        assert p.grad is not None and p.grad.abs().sum() > 0
    tiny_model.zero_grad(set_to_none=True)


@torch.no_grad()
def test_action_tokens_are_causal_over_the_chunk(tiny_model: SmolVLAModel, batch: Batch) -> None:
    ctx = tiny_model.prefill(*batch.obs())
    time = torch.tensor([0.5, 0.5])
    base = tiny_model.velocity(ctx, batch.actions, time)
    k = 4
    changed = batch.actions.clone()
    changed[:, k] += 1.0
    out = tiny_model.velocity(ctx, changed, time)
    torch.testing.assert_close(out[:, :k], base[:, :k], rtol=0, atol=1e-6)
    assert (out[:, k:] - base[:, k:]).abs().amax(dim=(0, 2)).min() > 1e-4


@torch.no_grad()
def test_padding_does_not_affect_outputs(tiny_model: SmolVLAModel, tiny_cfg) -> None:
    b = make_batch(tiny_cfg)
    noise = torch.randn_like(b.actions)
    base = tiny_model.sample_actions(*b.obs(), noise=noise)
    padded = copy.deepcopy(b)
    padded.images[1, -1] = torch.rand_like(padded.images[1, -1])  # the absent camera of element 1
    padded.lang_tokens[0, -2:] = torch.tensor([5, 6])  # the padded language tokens of element 0
    torch.testing.assert_close(tiny_model.sample_actions(*padded.obs(), noise=noise), base, rtol=0, atol=1e-6)
    # ...whereas a real camera's pixels do matter.
    real = copy.deepcopy(b)
    real.images[1, 0] = torch.rand_like(real.images[1, 0])
    assert not torch.allclose(tiny_model.sample_actions(*real.obs(), noise=noise)[1], base[1], atol=1e-4)


@torch.no_grad()
def test_prefix_and_cross_projections_run_once_per_chunk(tiny_model: SmolVLAModel, batch: Batch) -> None:
    calls: dict[str, int] = {}

    def counter(name):
        def hook(*_):
            calls[name] = calls.get(name, 0) + 1

        return hook

    modules = {
        "vision": tiny_model.vision,
        "vlm_q": tiny_model.text.layers[0].self_attn.q_proj,
        "cross_k": tiny_model.expert.layers[1].self_attn.k_proj,
        "self_k": tiny_model.expert.layers[0].self_attn.k_proj,
    }
    handles = [m.register_forward_hook(counter(n)) for n, m in modules.items()]
    try:
        tiny_model.sample_actions(*batch.obs(), num_steps=5)
    finally:
        for h in handles:
            h.remove()
    assert calls == {"vision": 1, "vlm_q": 1, "cross_k": 1, "self_k": 5}


@torch.no_grad()
def test_bf16_runs_close_to_fp32(tiny_model: SmolVLAModel, batch: Batch) -> None:
    noise = torch.randn_like(batch.actions)
    ref = tiny_model.sample_actions(*batch.obs(), noise=noise)
    half = copy.deepcopy(tiny_model).to(torch.bfloat16)
    out = half.sample_actions(batch.images.bfloat16(), *batch.obs()[1:4], batch.state.bfloat16(), noise=noise)
    assert out.dtype == torch.float32 and out.isfinite().all()
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()


def test_build_random_is_seeded(tiny_cfg) -> None:
    a, b = build_random(tiny_cfg, seed=1), build_random(tiny_cfg, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert torch.equal(a.expert.norm.weight, torch.ones_like(a.expert.norm.weight))
    assert a.vision.encoder.layers[0].mlp.fc1.weight.std().item() == pytest.approx(0.02, rel=0.1)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "images",
            torch.zeros(2, 2, 3, 32, 32),
            r"images: expected shape \(2, 2, 3, 64, 64\), got \(2, 2, 3, 32, 32\)",
        ),
        ("images", torch.zeros(2, 3, 64, 64), r"images must be float\[B, N, 3, H, W\], got shape \(2, 3, 64, 64\)"),
        ("image_masks", torch.ones(2, 2), r"image_masks: expected dtype torch.bool, got torch.float32"),
        ("lang_tokens", torch.zeros(2, 17, dtype=torch.int64), r"L <= max_lang_tokens=16, got shape \(2, 17\)"),
        ("lang_masks", torch.ones(2, 6, dtype=torch.bool), r"lang_masks: expected shape \(2, 7\), got \(2, 6\)"),
        ("state", torch.zeros(2, 14), r"state: expected shape \(2, 32\), got \(2, 14\)"),
        ("actions", torch.zeros(2, 9, 32), r"actions: expected shape \(2, 10, 32\), got \(2, 9, 32\)"),
    ],
)
def test_bad_inputs_raise_with_expected_and_got(tiny_model: SmolVLAModel, batch: Batch, field, value, message) -> None:
    setattr(batch, field, value)
    with pytest.raises(ValueError, match=message):
        tiny_model.compute_loss(*batch.obs(), batch.actions)


def test_bad_noise_and_time_raise(tiny_model: SmolVLAModel, batch: Batch) -> None:
    with pytest.raises(ValueError, match=r"noise: expected shape \(2, 10, 32\), got \(2, 10, 8\)"):
        tiny_model.sample_actions(*batch.obs(), noise=torch.zeros(2, 10, 8))
    with pytest.raises(ValueError, match=r"time: expected shape \(2,\), got \(3,\)"):
        tiny_model.compute_loss(*batch.obs(), batch.actions, time=torch.zeros(3))


@torch.no_grad()
def test_eager_attention_matches_sdpa(tiny_model: SmolVLAModel, tiny_cfg, batch: Batch) -> None:
    eager = SmolVLAModel(replace(tiny_cfg, attention="eager")).eval()
    eager.load_state_dict(tiny_model.state_dict())
    assert eager.text.layers[0].self_attn.eager and eager.vision.encoder.layers[0].self_attn.eager
    noise = torch.randn_like(batch.actions)
    torch.testing.assert_close(
        eager.sample_actions(*batch.obs(), noise=noise), tiny_model.sample_actions(*batch.obs(), noise=noise), **TOL
    )


def test_config_rejects_unknown_attention() -> None:
    with pytest.raises(ValueError, match=r"attention: expected one of \['sdpa', 'eager'\], got 'flash'"):
        get_config("tiny", attention="flash")


@pytest.mark.parametrize(
    ("hidden", "factor", "multiple", "expected"), [(960, 0.75, 256, 2048), (64, 0.75, 32, 128), (200, 0.5, 8, 264)]
)
def test_expert_mlp_width_follows_lerobot_rule(hidden: int, factor: float, multiple: int, expected: int) -> None:
    # LeRobot: 4 * int(2 * width / 3), rounded up to the multiple. Width 100 gives 4 * 66 = 264, where
    # int(8 * 100 / 3) = 266 would round up to 272.
    cfg = get_config("tiny")
    cfg = replace(
        cfg,
        decoder=replace(cfg.decoder, hidden=hidden),
        expert=replace(cfg.expert, width_factor=factor, mlp_multiple_of=multiple),
    )
    assert cfg.expert_mlp == expected


def test_inference_mode_and_forward_alias(tiny_model: SmolVLAModel, batch: Batch) -> None:
    noise = torch.randn_like(batch.actions)
    time = torch.tensor([0.4, 0.6])
    with torch.no_grad():
        ref = tiny_model.sample_actions(*batch.obs(), noise=noise)
        loss = tiny_model.compute_loss(*batch.obs(), batch.actions, noise=noise, time=time)
    with torch.inference_mode():
        torch.testing.assert_close(tiny_model.sample_actions(*batch.obs(), noise=noise), ref, rtol=0, atol=0)
        torch.testing.assert_close(tiny_model(*batch.obs(), batch.actions, noise=noise, time=time), loss)


@pytest.mark.slow
def test_full_size_sampling_runs() -> None:
    cfg = get_config("smolvla_base")
    model = build_random(cfg).eval()
    b = make_batch(cfg, batch=1, cameras=1, tokens=12)
    with torch.inference_mode():
        out = model.sample_actions(*b.obs(), num_steps=2)
    assert out.shape == (1, 50, 32) and out.isfinite().all()


# ---------------------------------------------------------------------------------------------------------------
# Parity details checked against LeRobot's documented formulas, independently of smolvla_reference.py (which
# reuses the model's own embed_prefix / embed_suffix).


@torch.no_grad()
def test_prefix_embeddings_scale_images_and_language_not_state(tiny_model: SmolVLAModel, batch: Batch) -> None:
    """Layout [cam0 | cam1 | language | state]; images and language times sqrt(D), the state token unscaled."""
    cfg, m = tiny_model.config, tiny_model
    embs, valid, new_block = m.embed_prefix(*batch.obs())
    b, n = batch.image_masks.shape
    v, d, lang = cfg.tokens_per_image, cfg.decoder.hidden, batch.lang_tokens.shape[1]
    cams = [m.connector(m.vision(batch.images[:, i])) * d**0.5 for i in range(n)]
    expected = torch.cat(
        [*cams, m.text.embed_tokens(batch.lang_tokens) * d**0.5, m.state_proj(batch.state)[:, None]], 1
    )
    assert embs.shape == (b, n * v + lang + 1, d)
    torch.testing.assert_close(embs, expected, rtol=1e-5, atol=1e-5)
    want_valid = torch.cat(
        [batch.image_masks.repeat_interleave(v, 1), batch.lang_masks, torch.ones(b, 1, dtype=bool)], 1
    )
    assert torch.equal(valid, want_valid)
    assert new_block.sum().item() == b and new_block[:, -1].all()  # only the state token starts a block


@torch.no_grad()
def test_suffix_concatenates_action_then_time_embedding(tiny_model: SmolVLAModel, batch: Batch) -> None:
    """action_time_mlp_out(silu(action_time_mlp_in([action_in_proj(x), temb]))); at t=0 temb is sin=0 then cos=1."""
    m, w = tiny_model, tiny_model.config.expert_hidden
    x = batch.actions
    temb = torch.cat([torch.zeros(w // 2), torch.ones(w // 2)]).expand(x.shape[0], x.shape[1], w)
    expected = m.action_time_mlp_out(F.silu(m.action_time_mlp_in(torch.cat([m.action_in_proj(x), temb], 2))))
    torch.testing.assert_close(m.embed_suffix(x, torch.zeros(x.shape[0])), expected, rtol=1e-6, atol=1e-6)


def test_expert_positions_continue_after_valid_prefix_and_restart_for_cross() -> None:
    """LeRobot: suffix positions = sum(prefix valid) + cumsum(1) - 1; cross-attention layers subtract the min."""
    valid = torch.tensor([[True, True, False, True], [True, True, True, True]])
    self_pos, cross_pos = expert_positions(valid, 3)
    assert self_pos.tolist() == [[3, 4, 5], [4, 5, 6]]
    assert cross_pos.tolist() == [[0, 1, 2], [0, 1, 2]]


def test_rope_uses_lerobot_wavelength_not_backbone_theta(batch: Batch) -> None:
    """LeRobot's apply_rope runs with its default wavelength 10000 for the VLM and the expert, whatever the
    backbone's rope_theta (100000 for SmolVLM2, so not kept in DecoderConfig); pi/2 rotation golden:
    position 1, frequencies 1 and 1/100."""
    cos, sin = rope_angles(torch.tensor([[1]]), 4, 10_000.0)
    torch.testing.assert_close(cos.flatten(), torch.tensor([1.0, 0.01]).cos())
    torch.testing.assert_close(sin.flatten(), torch.tensor([1.0, 0.01]).sin())
    assert get_config("smolvla_base").rope_wavelength == 10_000.0
    outs = []
    for overrides in ({}, {"rope_wavelength": 99.0}):
        model = build_random(get_config("tiny", **overrides), seed=0, std=0.1).eval()
        noise = torch.randn(2, 10, 32, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            outs.append(model.sample_actions(*batch.obs(), noise=noise, num_steps=2))
    assert not torch.allclose(outs[0], outs[1])
