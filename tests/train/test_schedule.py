"""The lr schedule against hand-computed golden values (the paper's finetuning numbers)."""

from __future__ import annotations

import pytest
import torch

from smolvla.train.config import ScheduleConfig
from smolvla.train.schedule import lr_at, make_scheduler

PAPER = ScheduleConfig(warmup_steps=1000, decay_steps=30_000, decay_lr=2.5e-6)
PEAK = 1e-4


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 1e-4 / 1001),  # warmup starts at peak / (W + 1)
        (500, 1e-4 * 501 / 1001),  # linear: (1 + 500) / 1001
        (999, 1e-4 * 1000 / 1001),
        # cosine measured from step 0: 2.5e-6 + (1e-4 - 2.5e-6) * 0.5 * (1 + cos(pi / 30))
        (1000, 9.973294239920332e-05),
        (15_000, 5.125e-05),  # half way: the mean of peak and floor
        (30_000, 2.5e-6),
        (45_000, 2.5e-6),  # flat after decay_steps
    ],
)
def test_golden_values(step: int, expected: float) -> None:
    assert lr_at(step, PAPER, PEAK) == pytest.approx(expected, rel=1e-12)


def test_scheduler_follows_closed_form_and_state_is_json_numbers() -> None:
    cfg = ScheduleConfig(warmup_steps=3, decay_steps=10, decay_lr=1e-5)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1e-3)
    sched = make_scheduler(opt, cfg, 1e-3)
    seen = []
    for _ in range(12):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([lr_at(s, cfg, 1e-3) for s in range(12)], rel=1e-12)
    import json

    json.dumps(sched.state_dict())  # must not need pickle


def test_negative_step_is_an_error() -> None:
    with pytest.raises(ValueError, match="step must be >= 0, got -1"):
        lr_at(-1, PAPER, PEAK)


def test_decay_must_end_after_warmup() -> None:
    with pytest.raises(ValueError, match=r"decay_steps \(10\) must exceed warmup_steps \(10\)"):
        ScheduleConfig(warmup_steps=10, decay_steps=10)
