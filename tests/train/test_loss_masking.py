"""The trained loss averages only real timesteps and real action dims.

Reference: the model's unreduced squared error on the same inputs, with the padded entries removed by
indexing, then averaged. The policy's loss on a batch whose padded steps hold garbage must give the same
value and the same gradient.
"""

from __future__ import annotations

import torch

from smolvla.policy.testing import make_fake_batch, make_tiny_policy
from smolvla.types import ACTION, ACTION_IS_PAD, OBS_STATE, TASK

CAMS = ("observation.images.top", "observation.images.wrist")


def _grads(policy) -> dict[str, torch.Tensor]:
    out = {n: p.grad.clone() for n, p in policy.model.named_parameters() if p.grad is not None}
    policy.zero_grad(set_to_none=True)
    return out


def _reference_loss(policy, batch, noise, time, real_steps: torch.Tensor) -> torch.Tensor:
    """Mean of the model's squared error over real steps and the first action_dim dims, built by hand."""
    cfg = policy.config
    st = policy.stats
    images = torch.stack([batch[k] * 2.0 - 1.0 for k in CAMS], dim=1)  # 64x64 already: no resize needed
    tokens, lang_mask = policy.tokenizer(batch[TASK])
    state = (batch[OBS_STATE] - st.get(OBS_STATE, "mean")) / (st.get(OBS_STATE, "std") + cfg.norm_eps)
    actions = (batch[ACTION] - st.get(ACTION, "mean")) / (st.get(ACTION, "std") + cfg.norm_eps)
    pad = cfg.model.max_action_dim - cfg.action_dim
    per = policy.model.compute_loss(
        images,
        torch.ones(images.shape[:2], dtype=torch.bool),
        tokens,
        lang_mask,
        torch.nn.functional.pad(state, (0, cfg.model.max_state_dim - cfg.state_dim)),
        torch.nn.functional.pad(actions, (0, pad)),
        noise=noise,
        time=time,
    )
    return per[real_steps][:, : cfg.action_dim].mean()


def test_padded_steps_and_dims_do_not_change_loss_or_gradient() -> None:
    policy = make_tiny_policy(camera_keys=CAMS, state_dim=6, action_dim=6, seed=1).train()
    cfg = policy.config
    batch = make_fake_batch(cfg, batch_size=3, seed=2, image_hw=(64, 64), with_actions=True, task="stack")
    is_pad = torch.zeros(3, cfg.chunk_size, dtype=torch.bool)
    is_pad[0, 6:] = True  # episode ended: the last 4 steps of sample 0 are padding
    is_pad[2, 3:] = True
    batch[ACTION_IS_PAD] = is_pad
    g = torch.Generator().manual_seed(3)
    noise = torch.randn(3, cfg.chunk_size, cfg.model.max_action_dim, generator=g)
    time = torch.rand(3, generator=g) * 0.9 + 0.05

    garbage = dict(batch, **{ACTION: batch[ACTION].masked_fill(is_pad[..., None], 1e3)})
    loss, per = policy.compute_loss(garbage, noise=noise, time=time)
    loss.backward()
    g_garbage = _grads(policy)

    ref = _reference_loss(policy, batch, noise, time, ~is_pad)
    ref.backward()
    g_ref = _grads(policy)

    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=0)
    assert per[is_pad].abs().sum() == 0 and per[..., cfg.action_dim :].abs().sum() == 0
    assert set(g_garbage) == set(g_ref)
    for name in g_ref:
        torch.testing.assert_close(g_garbage[name], g_ref[name], rtol=1e-4, atol=1e-7, msg=name)


def test_all_padding_is_an_error() -> None:
    policy = make_tiny_policy(camera_keys=CAMS)
    batch = make_fake_batch(policy.config, batch_size=1, image_hw=(64, 64), with_actions=True, task="x")
    batch[ACTION_IS_PAD] = torch.ones_like(batch[ACTION_IS_PAD])
    import pytest

    with pytest.raises(ValueError, match="every action timestep in the batch is padding"):
        policy.compute_loss(batch)
