"""Learning-rate schedule: linear warmup, then cosine decay to a floor, then flat (LeRobot's curve).

    lr
    peak |      ______
         |     /      ``--.._
         |    /              ``-._
         |   /                    `-.______  decay_lr
         |  /
       0 +--+-----------------------+----------> step
           warmup_steps         decay_steps

`lr_at` is the closed form (tested with golden values); `make_scheduler` wraps it in a torch
`LambdaLR` whose state dict is plain numbers, so it is saved as JSON. Both take a resolved schedule
(`ScheduleConfig.resolve(steps)`: step counts left to follow the run's length are filled in).
"""

from __future__ import annotations

import math

import torch

from smolvla.train.config import ScheduleConfig


def lr_factor(step: int, cfg: ScheduleConfig, peak_lr: float) -> float:
    """Multiplier on `peak_lr` for optimiser step `step` (0-based: step 0 is the first update).

    Follows LeRobot's `cosine_decay_with_warmup` exactly so runs are comparable with the incumbent:
    warmup rises linearly from 1/(W+1) at step 0 to 1 at step W; the cosine phase is measured from
    step 0 (not from the end of warmup), so the factor at step W is cos-decayed by W/decay_steps.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if cfg.warmup_steps is None or cfg.decay_steps is None:
        raise ValueError(f"the schedule must be resolved against the run's steps first (cfg.resolve(steps)): {cfg}")
    if step < cfg.warmup_steps:
        start = 1.0 / (cfg.warmup_steps + 1)
        return start + (1.0 - start) * step / cfg.warmup_steps
    floor = cfg.decay_lr / peak_lr
    progress = min(step, cfg.decay_steps) / cfg.decay_steps
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return floor + (1.0 - floor) * cosine


def lr_at(step: int, cfg: ScheduleConfig, peak_lr: float) -> float:
    """Learning rate used by optimiser step `step`."""
    return peak_lr * lr_factor(step, cfg, peak_lr)


class WarmupCosine:
    """Picklable-free callable for `LambdaLR`: its attributes are plain numbers (saved in the JSON state)."""

    def __init__(self, cfg: ScheduleConfig, peak_lr: float) -> None:
        self.warmup_steps = cfg.warmup_steps
        self.decay_steps = cfg.decay_steps
        self.decay_lr = cfg.decay_lr
        self.peak_lr = peak_lr

    def __call__(self, step: int) -> float:
        cfg = ScheduleConfig(warmup_steps=self.warmup_steps, decay_steps=self.decay_steps, decay_lr=self.decay_lr)
        return lr_factor(step, cfg, self.peak_lr)


def make_scheduler(
    optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, peak_lr: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step scheduler: call `.step()` once after each optimiser step. `cfg` is a resolved schedule."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(cfg, peak_lr))
