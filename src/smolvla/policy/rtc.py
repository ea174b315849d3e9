"""Real-time chunking (RTC, Black et al. 2025): the next chunk is sampled as a guided inpainting of the
actions that will still execute while it is being computed, so consecutive chunks join without a jump.

While chunk n+1 is inferred the robot keeps executing chunk n. The client sends those still-to-execute
actions (the "prefix", raw units) and its inference delay `d` (timesteps that will pass before the new
chunk arrives). The new chunk's first `d` actions cannot differ from the prefix (they execute before it
arrives), so they are guided with weight 1; the following ones up to the execution horizon with a weight
decaying to 0 (the schedule); the rest are free:

    prefix weight   1 1 1 1 | 0.8 0.5 0.2 | 0 0 0 0 0 ...
    timestep        0 ... d-1 d  ...  h-1   h ... chunk-1     (h = min(execution horizon, prefix length))

Guidance (the paper's Algorithm 1, pseudo-inverse guidance) at every Euler step of the flow, written in
this package's time convention (t = 1 noise, t = 0 data, x_t = t * noise + (1 - t) * actions, v = noise -
actions):

    a_hat = x_t - t * v(x_t, t)                       (the denoised estimate)
    g     = (d a_hat / d x_t)^T [W * (Y - a_hat)]      (one vector-Jacobian product through the expert)
    v'    = v - min(beta, (t^2 + (1 - t)^2) / (t (1 - t))) * g

Y the prefix (normalised like the policy's actions, padded), W the prefix weights, beta the maximum
guidance weight. With beta = 0 (or all weights 0) v' = v exactly: plain sampling.

Dimension legend: B batch, S chunk length, A max_action_dim (model units), D action_dim (raw units).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from smolvla.model.flow import euler_times

Schedule = Literal["exp", "linear", "ones", "zeros"]
SCHEDULES: tuple[str, ...] = ("exp", "linear", "ones", "zeros")


@dataclass(frozen=True)
class RTCConfig:
    """The operator's RTC settings (the client sends only its prefix and inference delay).

    schedule: how prefix weights fall from 1 (at the delay) to 0 (at the execution horizon): "exp" (the
        paper's), "linear", "ones" (1 up to the horizon), "zeros" (1 for the first `delay` actions only).
    max_guidance_weight: beta, the cap on the guidance weight (which diverges at t = 1); 0 disables RTC.
        The first Euler step moves the estimate by beta / num_steps times its distance to the prefix, so
        beta above num_steps overshoots (measured on the tiny policy: beta 5 and 10 land within 5% of the
        prefix with 4 steps, beta 100 ends further away than beta 1).
    execution_horizon: guide at most this many leading actions; None guides the whole prefix sent.
    """

    schedule: Schedule = "exp"
    max_guidance_weight: float = 5.0
    execution_horizon: int | None = None

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"RTC schedule must be one of {list(SCHEDULES)}, got {self.schedule!r}")
        if not (math.isfinite(self.max_guidance_weight) and self.max_guidance_weight >= 0):
            raise ValueError(f"RTC max_guidance_weight must be finite and >= 0, got {self.max_guidance_weight}")
        if self.execution_horizon is not None and self.execution_horizon < 1:
            raise ValueError(f"RTC execution_horizon must be >= 1 or None, got {self.execution_horizon}")


def prefix_weights(delay: int, horizon: int, total: int, schedule: Schedule) -> np.ndarray:
    """float32[total] guidance weights: 1 before `delay`, `schedule` from `delay` to `horizon`, 0 after.

    `delay` is clipped to `horizon` (a delay longer than the prefix guides the whole prefix fully).
    The decaying part excludes both ends: linear weights for positions delay..horizon-1 are
    (horizon - i) / (horizon - delay + 1); "exp" maps each linear weight c to c * (e^c - 1) / (e - 1).
    """
    if delay < 0 or horizon < 0 or total < 0:
        raise ValueError(f"need delay, horizon, total >= 0; got {delay}, {horizon}, {total}")
    horizon = min(horizon, total)
    delay = min(delay, horizon)
    w = np.zeros(total, np.float64)
    w[:delay] = 1.0
    if schedule == "ones":
        w[:horizon] = 1.0
    elif schedule in ("linear", "exp"):
        i = np.arange(delay, horizon)
        c = (horizon - i) / (horizon - delay + 1)
        w[delay:horizon] = c if schedule == "linear" else c * np.expm1(c) / (math.e - 1)
    elif schedule != "zeros":
        raise ValueError(f"RTC schedule must be one of {list(SCHEDULES)}, got {schedule!r}")
    return w.astype(np.float32)


def guidance_weight(t: float, beta: float) -> float:
    """min(beta, (t^2 + (1 - t)^2) / (t (1 - t))) at flow time t (t = 1 noise): the paper's
    (1 - tau) / (tau r^2) with tau = 1 - t, capped where it diverges (t -> 0 or 1)."""
    if t <= 0.0 or t >= 1.0:
        return beta
    return min(beta, (t * t + (1 - t) ** 2) / (t * (1 - t)))


@dataclass(frozen=True)
class RTCGuide:
    """One batch's RTC inputs. prefix float32[B, S, D] raw units (rows past each prefix are 0);
    weights float32[B, S] (0 for an element sent without a prefix: it is sampled plainly)."""

    prefix: Tensor
    weights: Tensor
    max_guidance_weight: float

    @classmethod
    def build(
        cls, prefixes: Sequence[np.ndarray | None], delays: Sequence[int], chunk_size: int, config: RTCConfig
    ) -> RTCGuide:
        """From per-element prefixes float32[n_i, D] (raw units, n_i <= chunk_size; None: no guidance) and
        inference delays in timesteps."""
        if len(prefixes) != len(delays):
            raise ValueError(f"{len(prefixes)} prefixes but {len(delays)} delays")
        dims = {p.shape[1] for p in prefixes if p is not None}
        if len(dims) != 1:
            raise ValueError(f"RTC needs prefixes float32[n, action_dim] of one action_dim, got dims {sorted(dims)}")
        dim = dims.pop()
        prefix = np.zeros((len(prefixes), chunk_size, dim), np.float32)
        weights = np.zeros((len(prefixes), chunk_size), np.float32)
        for i, (p, d) in enumerate(zip(prefixes, delays, strict=True)):
            if p is None:
                continue
            if p.ndim != 2 or p.shape[0] > chunk_size or not np.isfinite(p).all():
                raise ValueError(f"prefix {i} must be finite float32[<= {chunk_size}, {dim}], got {list(p.shape)}")
            n = p.shape[0]
            prefix[i, :n] = p
            horizon = n if config.execution_horizon is None else min(n, config.execution_horizon)
            weights[i] = prefix_weights(int(d), horizon, chunk_size, config.schedule)
        return cls(torch.from_numpy(prefix), torch.from_numpy(weights), float(config.max_guidance_weight))

    def sample(
        self,
        velocity: Callable[[Tensor, Tensor], Tensor],
        noise: Tensor,
        num_steps: int,
        normalize: Callable[[Tensor], Tensor],
    ) -> Tensor:
        """Guided Euler integration from t = 1 to 0: float32[B, S, A] in model units.

        velocity: (x float32[B, S, A], t float32[B]) -> v, differentiable in x (the prefix KV cache is a
            constant); normalize: raw float32[..., D] -> model units float32[..., A] (the policy's
            action input chain: normalisation, then zero padding to A).
        """
        b, s, a = noise.shape
        target = normalize(self.prefix.to(noise.device)).float()
        dim = self.prefix.shape[-1]
        # Guide only the real action dimensions; padded ones are free (the policy cuts them off).
        weights = self.weights.to(noise.device)[:, :, None] * (torch.arange(a, device=noise.device) < dim).float()
        if tuple(target.shape) != (b, s, a):
            raise ValueError(f"RTC prefix normalises to {tuple(target.shape)}, expected {(b, s, a)}")
        dt = -1.0 / num_steps
        x = noise.float()
        for t in euler_times(num_steps):
            time = torch.full((b,), t, dtype=torch.float32, device=noise.device)
            with torch.enable_grad():
                x_in = x.detach().requires_grad_(True)
                v = velocity(x_in, time)
                a_hat = x_in - t * v
                (g,) = torch.autograd.grad(a_hat, x_in, weights * (target - a_hat.detach()))
            x = x + dt * (v.detach() - guidance_weight(t, self.max_guidance_weight) * g)
        return x
