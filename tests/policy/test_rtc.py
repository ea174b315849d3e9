"""Real-time chunking: prefix weight schedules, the guidance weight, and guided sampling on the tiny policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from smolvla.policy.rtc import RTCConfig, RTCGuide, guidance_weight, prefix_weights
from smolvla.policy.testing import make_tiny_policy

CAM = "observation.images.top"


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("zeros", [1, 1, 0, 0, 0, 0, 0]),
        ("ones", [1, 1, 1, 1, 1, 0, 0]),
        ("linear", [1, 1, 0.75, 0.5, 0.25, 0, 0]),
    ],
)
def test_prefix_weights_schedules(schedule: str, expected: list[float]) -> None:
    np.testing.assert_allclose(prefix_weights(delay=2, horizon=5, total=7, schedule=schedule), expected)


def test_prefix_weights_exp_decays_below_linear_and_clips_the_delay() -> None:
    lin, exp = prefix_weights(2, 5, 7, "linear"), prefix_weights(2, 5, 7, "exp")
    c = np.array([0.75, 0.5, 0.25])
    np.testing.assert_allclose(exp[2:5], c * np.expm1(c) / (np.e - 1), rtol=1e-6)
    assert (exp[2:5] < lin[2:5]).all() and exp[:2].tolist() == [1, 1] and exp[5:].tolist() == [0, 0]
    # A delay beyond the prefix guides the whole prefix fully; a horizon beyond the chunk stops at it.
    np.testing.assert_array_equal(prefix_weights(9, 4, 6, "exp"), [1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(prefix_weights(1, 99, 3, "zeros"), [1, 0, 0])


def test_guidance_weight_is_capped_and_symmetric() -> None:
    assert guidance_weight(1.0, 5.0) == 5.0 and guidance_weight(0.0, 5.0) == 5.0
    assert guidance_weight(0.5, 5.0) == pytest.approx(2.0)  # (0.25 + 0.25) / 0.25
    assert guidance_weight(0.1, 100.0) == pytest.approx(guidance_weight(0.9, 100.0)) == pytest.approx(0.82 / 0.09)
    assert guidance_weight(0.3, 0.0) == 0.0


def test_rtc_config_validates() -> None:
    with pytest.raises(ValueError, match=r"schedule must be one of \['exp', 'linear', 'ones', 'zeros'\], got 'cos'"):
        RTCConfig(schedule="cos")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_guidance_weight must be finite and >= 0, got nan"):
        RTCConfig(max_guidance_weight=float("nan"))
    with pytest.raises(ValueError, match="execution_horizon must be >= 1 or None, got 0"):
        RTCConfig(execution_horizon=0)


def test_guide_build_refuses_bad_prefixes() -> None:
    cfg = RTCConfig()
    with pytest.raises(ValueError, match=r"prefix 0 must be finite float32\[<= 4, 2\], got \[5, 2\]"):
        RTCGuide.build([np.zeros((5, 2), np.float32)], [1], 4, cfg)
    with pytest.raises(ValueError, match="prefix 0 must be finite"):
        RTCGuide.build([np.full((2, 2), np.nan, np.float32)], [1], 4, cfg)
    with pytest.raises(ValueError, match=r"one action_dim, got dims \[2, 3\]"):
        RTCGuide.build([np.zeros((2, 2), np.float32), np.zeros((2, 3), np.float32)], [1, 1], 4, cfg)
    guide = RTCGuide.build([None, np.ones((2, 2), np.float32)], [0, 1], 4, RTCConfig(schedule="ones"))
    assert guide.weights.tolist() == [[0, 0, 0, 0], [1, 1, 0, 0]]  # no prefix: sampled plainly


def _policy_and_batch(bsize: int = 2):
    torch.manual_seed(0)
    policy = make_tiny_policy((CAM,), state_dim=4, action_dim=3)
    batch = {
        CAM: torch.rand(bsize, 3, 16, 16),
        "observation.state": torch.randn(bsize, 4),
        "task": ["pick the cube"] * bsize,
    }
    cfg = policy.config.model
    noise = torch.randn(bsize, cfg.chunk_size, cfg.max_action_dim)
    return policy, batch, noise


def test_rtc_with_zero_guidance_weight_equals_plain_sampling() -> None:
    policy, batch, noise = _policy_and_batch()
    chunk = policy.config.model.chunk_size
    prefix = np.full((chunk // 2, 3), 3.0, np.float32)
    guide = RTCGuide.build([prefix, prefix], [2, 2], chunk, RTCConfig(max_guidance_weight=0.0))
    plain = policy.predict_action_chunk(batch, noise=noise)
    guided = policy.predict_action_chunk(batch, noise=noise, rtc=guide)
    torch.testing.assert_close(guided, plain, rtol=0, atol=1e-6)


def test_rtc_with_a_high_weight_follows_the_frozen_prefix() -> None:
    policy, batch, noise = _policy_and_batch()
    chunk, delay = policy.config.model.chunk_size, 3
    plain = policy.predict_action_chunk(batch, noise=noise)
    # A prefix far from what the policy would do on its own: +2 raw units on every action of the first half.
    prefix = (plain[:, : chunk // 2] + 2.0).numpy()
    # beta = 5 (the paper's) is high for 4 Euler steps: the first step moves the estimate onto the prefix.
    guide = RTCGuide.build(list(prefix), [delay, delay], chunk, RTCConfig(max_guidance_weight=5.0))
    guided = policy.predict_action_chunk(batch, noise=noise, rtc=guide)
    frozen = (guided[:, :delay] - torch.from_numpy(prefix[:, :delay])).abs().max()
    assert frozen < 0.15, f"first {delay} actions are {frozen:.3f} from the prefix (plain sampling: 2.0)"
    weak = RTCGuide.build(list(prefix), [delay, delay], chunk, RTCConfig(max_guidance_weight=1.0))
    weakly = policy.predict_action_chunk(batch, noise=noise, rtc=weak)[:, :delay] - torch.from_numpy(prefix[:, :delay])
    assert frozen < 0.5 * weakly.abs().max()  # a lower cap guides less
    # Only the element's own prefix guides it: an element without a prefix is sampled plainly.
    solo = RTCGuide.build([prefix[0], None], [delay, 0], chunk, RTCConfig(max_guidance_weight=5.0))
    mixed = policy.predict_action_chunk(batch, noise=noise, rtc=solo)
    torch.testing.assert_close(mixed[1], plain[1], rtol=0, atol=1e-6)
    torch.testing.assert_close(mixed[0], guided[0], rtol=0, atol=1e-5)


def test_rtc_refuses_a_guide_of_the_wrong_batch_shape() -> None:
    policy, batch, noise = _policy_and_batch()
    chunk = policy.config.model.chunk_size
    guide = RTCGuide.build([np.zeros((2, 3), np.float32)], [1], chunk, RTCConfig())
    with pytest.raises(ValueError, match=rf"RTC prefix must be float32\[2, {chunk}, 3\], got \[1, {chunk}, 3\]"):
        policy.predict_action_chunk(batch, noise=noise, rtc=guide)
