"""Real-time chunking in numpy: the operator's settings, the prefix weights and guidance weight, and the
guided Euler loop of the torch-free runtime. The maths is described in `smolvla.policy.rtc` (the torch
policy's side, which imports the settings and weights from here so both engines share one definition).

Torch-free: the ONNX runtime gets the guidance term from `guide.onnx` (one forward and one vector-Jacobian
product of the expert, exported by `smolvla.export.guide_graph`), and this module only integrates.

Dimension legend: B batch, S chunk length, A max_action_dim (model units), D action_dim (raw units).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

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
class PrefixArrays:
    """One batch's RTC inputs in numpy. prefix float32[B, S, D] raw units (rows past each prefix are 0);
    weights float32[B, S] (all 0 for an element sent without a prefix: it is sampled plainly)."""

    prefix: np.ndarray
    weights: np.ndarray
    max_guidance_weight: float

    @classmethod
    def build(
        cls, prefixes: Sequence[np.ndarray | None], delays: Sequence[int], chunk_size: int, config: RTCConfig
    ) -> PrefixArrays:
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
        return cls(prefix, weights, float(config.max_guidance_weight))

    def model_weights(self, max_action_dim: int) -> np.ndarray:
        """float32[B, S, A]: the prefix weights on the real action dimensions, 0 on the padded ones (the
        policy cuts those off, so they are left free)."""
        dim = self.prefix.shape[-1]
        real = (np.arange(max_action_dim) < dim).astype(np.float32)
        return self.weights[:, :, None] * real


# (row, x float32[1, S, A], t float32[1], target float32[1, S, A], weights float32[1, S, A]) -> (velocity,
# guidance (d a_hat / d x)^T [weights * (target - a_hat)]), both float32[1, S, A]: batch element `row`'s step.
GuideStep = Callable[[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
# (rows, x float32[k, S, A], t float32[k]) -> velocity float32[k, S, A] of batch elements `rows` (k of them).
VelocityStep = Callable[[list[int], np.ndarray, np.ndarray], np.ndarray]


def guided_euler(
    velocity: VelocityStep,
    guide: GuideStep,
    noise: np.ndarray,
    times: Sequence[float],
    target: np.ndarray,
    weights: np.ndarray,
    beta: float,
) -> np.ndarray:
    """Euler from t = 1 to 0 with RTC guidance: float32[B, S, A] in model units.

    target: the prefix in model units float32[B, S, A]; weights float32[B, S, A] (see `model_weights`).
    Elements whose weights are all 0 take the plain velocity (batched); the others run `guide` one at a time
    (guide.onnx is traced at batch 1). v' = v - min(beta, (t^2 + (1 - t)^2) / (t (1 - t))) * guidance.
    """
    b = noise.shape[0]
    guided = [i for i in range(b) if weights[i].any()] if beta > 0 else []
    plain = [i for i in range(b) if i not in guided]
    dt = np.float32(-1.0 / len(times))
    x = noise.astype(np.float32)
    for t in times:
        v = np.empty_like(x)
        if plain:
            v[plain] = velocity(plain, x[plain], np.full((len(plain),), t, dtype=np.float32))
        w_t = np.float32(guidance_weight(t, beta))
        for i in guided:
            one = slice(i, i + 1)
            v_i, g_i = guide(i, x[one], np.full((1,), t, dtype=np.float32), target[one], weights[one])
            v[one] = v_i - w_t * g_i
        x = x + dt * v
    return x
