"""SmolVLAPolicy: wiring of the transforms into the model, action queue, loss masking, batch validation."""

from __future__ import annotations

import pytest
import torch

from smolvla.policy.testing import make_fake_batch, make_tiny_policy
from smolvla.policy.transforms import resize_with_pad

CAMS = ("observation.images.top", "observation.images.wrist")


@pytest.fixture(scope="module")
def policy():
    torch.set_num_threads(1)
    return make_tiny_policy(camera_keys=CAMS, state_dim=5, action_dim=4, n_action_steps=3, seed=1)


def _noise(policy, b: int = 2, seed: int = 0) -> torch.Tensor:
    cfg = policy.config
    return torch.randn(b, cfg.chunk_size, cfg.model.max_action_dim, generator=torch.Generator().manual_seed(seed))


def test_predict_matches_manual_pipeline(policy) -> None:
    """Images resized/padded and scaled to [-1, 1], state normalised and padded, output cut and unnormalised."""
    batch = make_fake_batch(policy.config, batch_size=2, image_hw=(30, 50))
    noise = _noise(policy)
    got = policy.predict_action_chunk(batch, noise=noise)
    assert got.shape == (2, 10, 4) and got.dtype == torch.float32

    s = policy.stats.stats
    images = torch.stack([resize_with_pad(batch[k], 64) * 2 - 1 for k in CAMS], dim=1)
    state = (batch["observation.state"] - s["observation.state"]["mean"]) / (s["observation.state"]["std"] + 1e-8)
    state = torch.cat([state, torch.zeros(2, 27)], dim=1)
    ids = [list(b"pick up the cube\n") + [256] * (48 - 17)] * 2
    tokens = torch.tensor(ids)
    with torch.no_grad():
        raw = policy.model.sample_actions(
            images, torch.ones(2, 2, dtype=torch.bool), tokens, tokens != 256, state, noise
        )
    want = raw[..., :4] * s["action"]["std"] + s["action"]["mean"]
    torch.testing.assert_close(got, want)


def test_pretokenised_language_equals_task_strings(policy) -> None:
    batch = make_fake_batch(policy.config)
    tokens, mask = policy.tokenizer(batch["task"])
    pre = {k: v for k, v in batch.items() if k != "task"}
    pre |= {"observation.language.tokens": tokens, "observation.language.attention_mask": mask}
    noise = _noise(policy)
    torch.testing.assert_close(policy.predict_action_chunk(pre, noise), policy.predict_action_chunk(batch, noise))


def test_select_action_serves_n_action_steps_then_replans(policy, monkeypatch) -> None:
    batch = make_fake_batch(policy.config, batch_size=2)
    chunks = [torch.randn(2, 10, 32) for _ in range(2)]
    calls = []

    def fake_sample(**kwargs):
        calls.append(1)
        return chunks[len(calls) - 1]

    monkeypatch.setattr(policy.model, "sample_actions", fake_sample)
    policy.reset()
    s = policy.stats.stats["action"]
    for i in range(3):
        a = policy.select_action(batch)
        assert a.shape == (2, 4)
        torch.testing.assert_close(a, chunks[0][:, i, :4] * s["std"] + s["mean"])
    assert len(calls) == 1
    torch.testing.assert_close(policy.select_action(batch), chunks[1][:, 0, :4] * s["std"] + s["mean"])
    assert len(calls) == 2
    policy.reset()
    assert len(policy._queue) == 0


def test_set_n_action_steps_replans_after_n(monkeypatch) -> None:
    pol = make_tiny_policy(camera_keys=CAMS, state_dim=5, action_dim=4, n_action_steps=3, seed=1)
    batch = make_fake_batch(pol.config)
    calls = []
    monkeypatch.setattr(pol.model, "sample_actions", lambda **kw: calls.append(1) or torch.zeros(2, 10, 32))
    pol.select_action(batch)
    pol.set_n_action_steps(1)  # drops the queued rest of the old chunk
    assert pol.config.n_action_steps == 1 and len(calls) == 1
    for _ in range(3):
        pol.select_action(batch)
    assert len(calls) == 4
    with pytest.raises(ValueError, match=r"n_action_steps must be in \[1, chunk_size=10\], got 11"):
        pol.set_n_action_steps(11)
    assert pol.config.n_action_steps == 1


def test_loss_golden_masking(policy, monkeypatch) -> None:
    """Padded timesteps and padded action dims contribute nothing to the mean."""
    per = torch.arange(2 * 10 * 32, dtype=torch.float32).reshape(2, 10, 32)
    monkeypatch.setattr(policy.model, "compute_loss", lambda **kw: per.clone())
    batch = make_fake_batch(policy.config, with_actions=True)
    batch["action_is_pad"][0, 7:] = True  # element 0: 7 real steps; element 1: all 10
    loss, masked = policy.compute_loss(batch)
    want = torch.cat([per[0, :7, :4].flatten(), per[1, :, :4].flatten()]).mean()
    torch.testing.assert_close(loss, want)
    assert masked.shape == (2, 10, 32)
    assert torch.equal(masked[0, 7:], torch.zeros(3, 32)) and torch.equal(masked[:, :, 4:], torch.zeros(2, 10, 28))
    assert torch.equal(masked[1, :, :4], per[1, :, :4])


def test_padded_steps_do_not_change_the_loss(policy) -> None:
    batch = make_fake_batch(policy.config, with_actions=True)
    batch["action_is_pad"][:, 6:] = True
    noise, time = _noise(policy), torch.tensor([0.3, 0.8])
    loss_a, _ = policy.compute_loss(batch, noise=noise, time=time)
    batch["action"][:, 6:] += 100.0  # garbage beyond the episode end
    loss_b, _ = policy.compute_loss(batch, noise=noise, time=time)
    torch.testing.assert_close(loss_a, loss_b)
    loss_a.backward()  # the loss is differentiable end to end
    assert policy.model.action_out_proj.weight.grad is not None
    policy.zero_grad(set_to_none=True)


def test_all_padded_batch_is_an_error(policy) -> None:
    batch = make_fake_batch(policy.config, with_actions=True)
    batch["action_is_pad"][:] = True
    with pytest.raises(ValueError, match="every action timestep in the batch is padding"):
        policy.compute_loss(batch)


def _bad(policy, edit):
    batch = make_fake_batch(policy.config, with_actions=True)
    edit(batch)
    return batch


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda b: b.pop("observation.images.wrist"), r"camera keys mismatch.*missing \['observation.images.wrist'\]"),
        (
            lambda b: b.update({"observation.images.side": b["observation.images.top"]}),
            r"extra \['observation.images.side'\]",
        ),
        (
            lambda b: b.update({"observation.state": torch.zeros(2, 6)}),
            r"observation.state must be float32\[B, 5\], got \(2, 6\)",
        ),
        (lambda b: b["observation.state"].__setitem__((0, 0), float("nan")), "observation.state contains NaN or inf"),
        (lambda b: b.update({"observation.images.top": b["observation.images.top"] * 255}), r"must be in \[0, 1\]"),
        (
            lambda b: b.update({"observation.images.top": torch.zeros(2, 3, 8, 8, dtype=torch.uint8)}),
            "must be a floating tensor",
        ),
        (lambda b: b.update({"observation.images.top": torch.zeros(2, 1, 8, 8)}), r"must be float32\[2, 3, H, W\]"),
        (lambda b: b.update({"task": ["a", "b", "c"]}), "'task' has 3 strings for a batch of 2"),
        (lambda b: b.pop("task"), "batch needs 'task'"),
        (lambda b: b.update({"task": ["x" * 60] * 2}), "task 0 is 61 tokens, more than the budget of 48"),
        (lambda b: b.update({"action": torch.zeros(2, 10, 5)}), r"action must be float32\[2, 10, 4\]"),
        (lambda b: b.update({"action_is_pad": torch.zeros(2, 10)}), r"action_is_pad must be bool\[2, 10\]"),
    ],
)
def test_batch_errors(policy, edit, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        policy.compute_loss(_bad(policy, edit))


def test_noise_shape_and_missing_tokenizer(policy) -> None:
    batch = make_fake_batch(policy.config)
    with pytest.raises(ValueError, match=r"noise must be float32\[2, 10, 32\]"):
        policy.predict_action_chunk(batch, noise=torch.zeros(2, 10, 4))
    no_tok = make_tiny_policy(camera_keys=CAMS, state_dim=5, action_dim=4)
    no_tok.tokenizer = None
    with pytest.raises(ValueError, match="this policy has no tokenizer"):
        no_tok.predict_action_chunk(batch)


def test_empty_camera_slot_is_masked_blank(monkeypatch) -> None:
    policy = make_tiny_policy(empty_cameras=2)
    seen = {}
    monkeypatch.setattr(policy.model, "sample_actions", lambda **kw: seen.update(kw) or torch.zeros(1, 10, 32))
    policy.predict_action_chunk(make_fake_batch(policy.config, batch_size=1))
    assert seen["image_masks"].tolist() == [[True, False, False]]
    assert torch.equal(seen["images"][:, 1:], torch.full((1, 2, 3, 64, 64), -1.0))


def test_bfloat16_when_asked() -> None:
    policy = make_tiny_policy().to(torch.bfloat16)
    out = policy.predict_action_chunk(make_fake_batch(policy.config))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_select_action_returns_the_chunk_in_order_with_the_real_model(policy) -> None:
    batch = make_fake_batch(policy.config)
    torch.manual_seed(5)
    chunk = policy.predict_action_chunk(batch)
    policy.reset()
    torch.manual_seed(5)  # the same noise is drawn inside sample_actions
    steps = [policy.select_action(batch) for _ in range(3)]
    torch.testing.assert_close(torch.stack(steps, dim=1), chunk[:, :3])
    policy.reset()
