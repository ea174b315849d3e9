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

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

# The settings, schedules and weights are numpy and shared with the torch-free runtime (smolvla.deploy.rtc).
from smolvla.deploy.rtc import SCHEDULES, PrefixArrays, RTCConfig, Schedule, guidance_weight, prefix_weights
from smolvla.model.flow import euler_times

__all__ = ["SCHEDULES", "RTCConfig", "RTCGuide", "Schedule", "guidance_weight", "prefix_weights"]


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
        inference delays in timesteps (checked and weighted by `PrefixArrays.build`)."""
        arrays = PrefixArrays.build(prefixes, delays, chunk_size, config)
        return cls(torch.from_numpy(arrays.prefix), torch.from_numpy(arrays.weights), arrays.max_guidance_weight)

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
