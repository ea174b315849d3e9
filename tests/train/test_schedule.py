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


def test_preset_schedule_follows_the_run_length() -> None:
    """tiny_cpu used to decay to its floor at step 200 whatever --steps said: a 2000-step run spent 90% of
    its steps at 1e-5. Unless given, the decay ends at the run's last step and warmup is a fraction of it."""
    from smolvla.train.config import get_train_config

    cfg = get_train_config("tiny_cpu", steps=2000)
    sched = cfg.schedule.resolve(cfg.steps)
    assert (sched.warmup_steps, sched.decay_steps) == (100, 2000)
    peak, floor = cfg.optimizer.lr, cfg.schedule.decay_lr
    assert lr_at(1000, sched, peak) == pytest.approx((peak + floor) / 2)  # half way down, far from the floor
    assert lr_at(1999, sched, peak) > floor and lr_at(2000, sched, peak) == pytest.approx(floor)
    # The preset's own length gives its original schedule back; the paper's finetuning numbers too.
    tiny = get_train_config("tiny_cpu")
    assert tiny.schedule.resolve(tiny.steps) == ScheduleConfig(10, 200, 1e-5, warmup_fraction=0.05)
    fine = get_train_config("finetune").schedule
    assert fine.resolve(30_000) == PAPER and fine.resolve(3000).warmup_steps == 100
    assert get_train_config("pretrain_mixture").schedule.resolve(200_000).warmup_steps == 1000


def test_explicit_steps_are_kept_and_checked_against_the_run() -> None:
    explicit = ScheduleConfig(warmup_steps=10, decay_steps=200, decay_lr=1e-5)
    assert explicit.resolve(2000) == explicit
    assert ScheduleConfig(warmup_steps=10).resolve(50).decay_steps == 50
    assert ScheduleConfig(decay_steps=300).resolve(50).warmup_steps == 10  # 1/30 of the decay horizon
    with pytest.raises(ValueError, match=r"warmup_steps \(1000\) must be below decay_steps \(500, the run's steps\)"):
        ScheduleConfig(warmup_steps=1000).resolve(500)
    with pytest.raises(ValueError, match=r"warmup_fraction must be in \[0, 1\), got 1.5"):
        ScheduleConfig(warmup_fraction=1.5)


def test_unresolved_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match=r"must be resolved against the run's steps first"):
        lr_at(0, ScheduleConfig(), PEAK)
