from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from smolvla.model.flow import euler_times, integrate, sample_time, time_embedding


def test_sample_time_follows_scaled_beta() -> None:
    t = sample_time(40_000, generator=torch.Generator().manual_seed(0))
    assert t.dtype == torch.float32 and t.shape == (40_000,)
    assert t.min() >= 0.001 and t.max() <= 1.0
    # Beta(1.5, 1) has CDF x**1.5; compare the empirical CDF at a few points.
    for x in (0.1, 0.3, 0.5, 0.7, 0.9):
        expected = ((x - 0.001) / 0.999) ** 1.5
        assert abs((t <= x).float().mean().item() - expected) < 0.01
    same = sample_time(5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(same, sample_time(5, generator=torch.Generator().manual_seed(3)))


def test_time_embedding_golden_values() -> None:
    emb = time_embedding(torch.tensor([0.0, 0.5]), 4, 4e-3, 4.0)
    # periods 0.004 and 4.0: at t=0.5 the angles are 250*pi and pi/4.
    s = math.sqrt(0.5)
    expected = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, s, 1.0, s]], dtype=torch.float64)
    torch.testing.assert_close(emb, expected, rtol=0, atol=1e-9)
    assert emb.dtype == torch.float64


def test_time_embedding_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="width must be even, got 5"):
        time_embedding(torch.zeros(2), 5, 4e-3, 4.0)
    with pytest.raises(ValueError, match=r"time must be float\[B\], got shape \(2, 1\)"):
        time_embedding(torch.zeros(2, 1), 4, 4e-3, 4.0)


def test_euler_times_match_lerobot_loop() -> None:
    # LeRobot 0.6.1: exactly num_steps evaluations at float32(1.0 + k * dt), k = 0..num_steps-1.
    times = euler_times(10)
    assert times == [float(np.float32(1.0 - k / 10)) for k in range(10)]
    assert times[3] == float(np.float32(0.7)) == 0.699999988079071
    # A float32 `t += dt` loop (LeRobot before 0.6) lands one ulp away here: 1 - 3 * 0.1f = 0.69999993f.
    drifted = np.float32(1.0)
    for _ in range(3):
        drifted = np.float32(drifted + np.float32(-0.1))
    assert float(drifted) != times[3]
    assert euler_times(1) == [1.0] and len(euler_times(50)) == 50
    with pytest.raises(ValueError, match="num_steps must be >= 1, got 0"):
        euler_times(0)


def test_integrate_euler_on_known_fields() -> None:
    noise = torch.randn(2, 3, 4)
    original = noise.clone()
    seen = []

    def constant(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen.append(t.clone())
        return torch.full_like(x, 2.0)

    out = integrate(constant, noise, 5)
    torch.testing.assert_close(out, noise - 2.0, rtol=0, atol=1e-5)
    assert [round(float(t[0]), 5) for t in seen] == [1.0, 0.8, 0.6, 0.4, 0.2] and seen[0].shape == (2,)
    torch.testing.assert_close(integrate(lambda x, t: x, noise, 10), noise * 0.9**10, rtol=1e-5, atol=1e-6)
    assert torch.equal(noise, original)  # input untouched (out-of-place updates)
