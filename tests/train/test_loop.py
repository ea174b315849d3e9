"""End-to-end training on a tiny synthetic dataset: resume bit-exactness, eval hook, accelerate path."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from smolvla.train.config import DataConfig, DatasetSpec, ScheduleConfig, TrainConfig, get_train_config
from smolvla.train.loop import main
from smolvla.train.metrics import read_metrics


def _cfg(dataset: Path, out: Path, **kw) -> TrainConfig:
    # An explicit schedule: a run stopped at step 2 of 4 (modelled by steps=2) must have the 4-step run's.
    schedule = ScheduleConfig(warmup_steps=1, decay_steps=4, decay_lr=1e-5)
    base = {"steps": 4, "batch_size": 4, "log_every": 1, "save_every": 2, "plot_loss": False, "schedule": schedule}
    base.update(kw)
    return get_train_config(
        "tiny_cpu", output_dir=str(out), data=DataConfig(datasets=(DatasetSpec(str(dataset)),)), **base
    )


def _curve(run: Path) -> list[tuple]:
    return [(r["step"], r["loss"], r["grad_norm"], r["lr"]) for r in read_metrics(run / "metrics.jsonl") if "loss" in r]


def _weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return load_file(str(ckpt / "pretrained_model" / "model.safetensors"))


@pytest.fixture(scope="module")
def reference_run(tiny_dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref")
    threads = torch.get_num_threads()
    result = main(_cfg(tiny_dataset, out, plot_loss=True, num_threads=1))
    assert torch.get_num_threads() == threads  # the run's thread setting does not leak out of main
    assert result.step == 4 and result.checkpoint == out / "checkpoints" / "00000004"
    return out


def test_resume_reproduces_uninterrupted_run_bit_exactly(tiny_dataset, reference_run, tmp_path) -> None:
    main(_cfg(tiny_dataset, tmp_path, steps=2))
    assert (tmp_path / "checkpoints" / "last").resolve().name == "00000002"
    main(_cfg(tiny_dataset, tmp_path, steps=4, resume=True))
    ref = _curve(reference_run)
    assert len(ref) == 4 and ref[0][1] > 0
    assert _curve(tmp_path) == ref  # exact float equality, not approx
    a, b = _weights(reference_run / "checkpoints" / "00000004"), _weights(tmp_path / "checkpoints" / "00000004")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa = load_file(str(reference_run / "checkpoints/00000004/training_state/optimizer_state.safetensors"))
    sb = load_file(str(tmp_path / "checkpoints/00000004/training_state/optimizer_state.safetensors"))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    step = json.loads((tmp_path / "checkpoints/00000004/training_state/training_step.json").read_text())
    assert step == {"step": 4, "sampler": {"epoch": 0, "offset": 4}}  # 36 frames / 4 = 9 batches per epoch


def test_training_reduces_loss_and_writes_artifacts(tiny_dataset, reference_run, tmp_path) -> None:
    # Batch-to-batch noise (random flow times and noise) is as large as 4 steps of progress, so the trained
    # curve is compared with the same run at a learning rate of ~0: same batches, noise and times (the
    # losses equal at step 1, computed before any update), so any gap afterwards is what training did.
    # Measured: trained 2.58 2.24 2.24 2.03, untrained 2.58 2.48 2.73 2.65.
    base = _cfg(tiny_dataset, tmp_path)
    main(dataclasses.replace(base, optimizer=dataclasses.replace(base.optimizer, lr=1e-12)))
    trained, untrained = [c[1] for c in _curve(reference_run)], [c[1] for c in _curve(tmp_path)]
    assert len(trained) == len(untrained) == 4 and trained[0] == untrained[0]
    assert all(t < u for t, u in zip(trained[1:], untrained[1:], strict=True)), (trained, untrained)
    assert sum(trained[1:]) < 0.9 * sum(untrained[1:]), (trained, untrained)
    assert trained[-1] < 0.9 * trained[0], trained
    assert (reference_run / "loss_curve.png").stat().st_size > 1000
    assert [p.name for p in sorted((reference_run / "checkpoints").iterdir())] == ["00000002", "00000004", "last"]
    cfg = TrainConfig.from_json(reference_run / "checkpoints/00000004/train_config.json")
    assert cfg.steps == 4 and cfg.freeze == "full"


def test_eval_hook_runs_and_does_not_perturb_training(tiny_dataset, reference_run, tmp_path) -> None:
    calls = []

    def eval_fn(policy, step):
        assert not policy.training
        torch.randn(100)  # a simulator drawing random numbers must not shift the training noise
        calls.append(step)
        return {"success_rate": 0.5}

    main(_cfg(tiny_dataset, tmp_path, eval_every=2), eval_fn=eval_fn)
    assert calls == [2, 4]
    assert _curve(tmp_path) == _curve(reference_run)
    evals = [r for r in read_metrics(tmp_path / "metrics.jsonl") if "eval/success_rate" in r]
    assert [(r["step"], r["eval/success_rate"]) for r in evals] == [(2, 0.5), (4, 0.5)]


def test_accelerate_backend_on_cpu_matches_single_process(tiny_dataset, reference_run, tmp_path) -> None:
    pytest.importorskip("accelerate")
    main(_cfg(tiny_dataset, tmp_path, backend="accelerate"))
    assert _curve(tmp_path) == _curve(reference_run)


def test_existing_run_needs_resume(tiny_dataset, reference_run) -> None:
    cfg = dataclasses.replace(_cfg(tiny_dataset, reference_run), resume=False)
    with pytest.raises(ValueError, match=r"already holds checkpoints .*pass resume=True"):
        main(cfg)


def test_resume_without_checkpoint_is_an_error(tiny_dataset, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"cannot resume: no 'last' checkpoint pointer"):
        main(_cfg(tiny_dataset, tmp_path, resume=True))


def test_resume_with_another_freeze_mode_is_an_error(tiny_dataset, reference_run) -> None:
    cfg = _cfg(tiny_dataset, reference_run, resume=True, steps=6, freeze="expert_only")
    with pytest.raises(ValueError, match=r"\(freeze='full'\) with freeze='expert_only'"):
        main(cfg)


def test_resume_with_another_lr_schedule_is_an_error(tiny_dataset, reference_run) -> None:
    base = _cfg(tiny_dataset, reference_run, resume=True, steps=6)
    cfg = dataclasses.replace(
        base, schedule=dataclasses.replace(base.schedule, decay_steps=base.schedule.decay_steps + 7)
    )
    with pytest.raises(ValueError, match=r"another optimiser or learning-rate schedule \(schedule\.decay_steps: saved"):
        main(cfg)
    cfg = dataclasses.replace(base, optimizer=dataclasses.replace(base.optimizer, lr=base.optimizer.lr * 2))
    with pytest.raises(ValueError, match=r"optimizer\.lr: saved .*--lr"):
        main(cfg)


def test_resume_with_a_schedule_that_follows_steps_is_checked_resolved(tiny_dataset, reference_run) -> None:
    """A schedule left to follow the run's length changes with --steps; resuming the 4-step run for 6 steps
    would silently keep the saved one, so it is refused with the flags that keep it."""
    cfg = _cfg(tiny_dataset, reference_run, resume=True, steps=6, schedule=ScheduleConfig(decay_lr=1e-5))
    with pytest.raises(ValueError, match=r"schedule\.decay_steps: saved 4, given 6.*--warmup-steps 1 --decay-steps 4"):
        main(cfg)


def test_finetune_preset_without_init_fails_before_reading_data(tmp_path) -> None:
    data = DataConfig(datasets=(DatasetSpec(str(tmp_path / "missing")),))
    with pytest.raises(ValueError, match=r"freeze='expert_only' keeps the whole VLM .* init is 'scratch'"):
        main(get_train_config("finetune", data=data, output_dir=str(tmp_path / "run")))
