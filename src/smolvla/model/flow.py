"""Flow matching pieces: training-time sampling, the sinusoidal time embedding, Euler integration.

Time convention (LeRobot / openpi): t = 1 is pure noise, t = 0 the data.
    x_t = t * noise + (1 - t) * actions,   target velocity u = noise - actions,
and inference integrates dx/dt = v(x, t) from t = 1 down to t = 0.

Dimension legend:
    B   batch
    S   action chunk length, A max_action_dim
    W   time-embedding width (the expert width)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

# SmolVLA's training-time distribution: Beta(alpha=1.5, beta=1) squeezed into [0.001, 1.0].
TIME_ALPHA = 1.5
TIME_SCALE = 0.999
TIME_OFFSET = 0.001


def sample_time(batch: int, *, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> Tensor:
    """Training flow times: float32[B] ~ Beta(1.5, 1.0) * 0.999 + 0.001 (biased towards the noisy end).

    Beta(a, 1) has CDF x**a, so U**(1/a) with U uniform is an exact sample; unlike
    `torch.distributions.Beta` this honours `generator`. Same distribution as LeRobot, not the same stream.
    """
    u = torch.rand(batch, generator=generator, device=device, dtype=torch.float32)
    return u.pow(1.0 / TIME_ALPHA) * TIME_SCALE + TIME_OFFSET


def time_embedding(time: Tensor, width: int, min_period: float, max_period: float) -> Tensor:
    """Sine/cosine embedding of flow times with periods spaced geometrically from min_period to max_period.

    Computed in float64 (as LeRobot does on CPU) and returned in float64; callers cast to their dtype.

    Args:
        time: float[B].
    Returns:
        float64[B, W]: [sin(2 pi t / period_i) for i] ++ [cos(...) for i], W/2 periods each.
    """
    if width % 2:
        raise ValueError(f"time embedding width must be even, got {width}")
    if time.ndim != 1:
        raise ValueError(f"time must be float[B], got shape {tuple(time.shape)}")
    fraction = torch.linspace(0.0, 1.0, width // 2, dtype=torch.float64, device=time.device)
    period = min_period * (max_period / min_period) ** fraction
    angle = (2 * math.pi / period)[None, :] * time.to(torch.float64)[:, None]
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)


def euler_times(num_steps: int) -> list[float]:
    """Flow times of the velocity evaluations: t_k = 1 + k * dt for k = 0 .. num_steps - 1, dt = -1/num_steps.

    Each t_k is computed in double precision and then rounded to float32, as LeRobot 0.6.1's `euler_integrate`
    does. (Its earlier loop accumulated `t += dt` in float32 while `t >= -dt/2`; those times drift from these
    by a few ulps, e.g. 8 of the 10 times differ for num_steps=10, which moves a sampled chunk by ~1e-5.)
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    dt = -1.0 / num_steps
    return [float(torch.tensor(1.0 + k * dt, dtype=torch.float32)) for k in range(num_steps)]


def integrate(velocity: Callable[[Tensor, Tensor], Tensor], noise: Tensor, num_steps: int) -> Tensor:
    """Euler-integrate x from t = 1 (x = noise) to t = 0 with `num_steps` steps of dt = -1/num_steps.

    Args:
        velocity: (x float32[B, S, A], t float32[B]) -> v float32[B, S, A].
        noise: float32[B, S, A]; not modified.
    Returns:
        float32[B, S, A], the sample at t = 0.
    """
    dt = -1.0 / num_steps
    x = noise
    for t in euler_times(num_steps):
        time = torch.full((noise.shape[0],), t, dtype=torch.float32, device=noise.device)
        x = x + dt * velocity(x, time)
    return x
