"""Freeze modes: which parameters train, and that every trainable one gets a gradient (DDP-safe)."""

from __future__ import annotations

import pytest

from smolvla.policy.testing import make_fake_batch, make_tiny_policy
from smolvla.train.freeze import apply_freeze

PROJ = ("state_proj.", "action_in_proj.", "action_out_proj.", "action_time_mlp_in.", "action_time_mlp_out.")


def _policy():
    return make_tiny_policy(camera_keys=("observation.images.top",)).train()


def test_expert_only_trains_expert_and_projections() -> None:
    p = _policy()
    names = apply_freeze(p.model, "expert_only", p.config.model.decoder.layers)
    assert names and all(n.startswith(("expert.", *PROJ)) for n in names)
    assert any(n.startswith("expert.") for n in names) and any(n.startswith("state_proj.") for n in names)


def test_vision_frozen_and_full() -> None:
    p = _policy()
    last = p.config.model.decoder.layers - 1
    vf = apply_freeze(p.model, "vision_frozen", last + 1)
    assert not any(n.startswith("vision.") for n in vf)
    assert any(n.startswith("connector.") for n in vf) and "text.layers.0.self_attn.q_proj.weight" in vf
    assert not any(n.startswith((f"text.layers.{last}.", "text.norm.")) for n in vf)
    full = apply_freeze(p.model, "full", last + 1)
    assert "vision.embeddings.patch_embedding.weight" in full
    assert set(full) - set(vf) == {n for n, _ in p.model.named_parameters() if n.startswith("vision.")}


@pytest.mark.parametrize("mode", ["expert_only", "vision_frozen", "full"])
def test_every_trainable_parameter_gets_a_gradient(mode: str) -> None:
    # DistributedDataParallel fails on trainable parameters that receive no gradient.
    p = _policy()
    apply_freeze(p.model, mode, p.config.model.decoder.layers)
    loss, _ = p.compute_loss(make_fake_batch(p.config, with_actions=True, image_hw=(64, 64), task="pick"))
    loss.backward()
    no_grad = [n for n, q in p.model.named_parameters() if q.requires_grad and q.grad is None]
    frozen_with_grad = [n for n, q in p.model.named_parameters() if not q.requires_grad and q.grad is not None]
    assert no_grad == [] and frozen_with_grad == []


def test_unknown_mode_is_an_error() -> None:
    p = _policy()
    with pytest.raises(ValueError, match=r"unknown freeze mode 'vision_only'"):
        apply_freeze(p.model, "vision_only", 4)  # type: ignore[arg-type]
