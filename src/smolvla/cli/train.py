"""`smolvla train`: build a TrainConfig from a named preset plus command-line overrides, then run it.

smolvla train --preset tiny_cpu --dataset DIR --steps 200 --batch-size 8 --output-dir runs/tiny
smolvla train --preset finetune --init lerobot --init-path ckpt/ --dataset DIR --device cuda
smolvla train --preset tiny_cpu --dataset DIR --output-dir runs/tiny --resume
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import typer


def _overrides(opts: dict[str, Any]) -> dict[str, Any]:
    """Top-level TrainConfig fields given on the command line (None = keep the preset's value)."""
    names = (
        "steps", "batch_size", "seed", "output_dir", "save_every", "keep_last_n", "log_every", "eval_every",
        "device", "backend", "mixed_precision", "freeze", "num_threads",
    )  # fmt: skip
    out = {k: opts[k] for k in names if opts.get(k) is not None}
    if opts.get("resume"):
        out["resume"] = True
    if opts.get("tensorboard"):
        out["tensorboard"] = True
    return out


def build_config(
    preset: str,
    datasets: list[str],
    weights: list[float] | None = None,
    init: str | None = None,
    init_path: str | None = None,
    model_preset: str | None = None,
    lr: float | None = None,
    num_workers: int | None = None,
    schedule: dict[str, Any] | None = None,
    **opts: Any,
):
    """The TrainConfig the command runs (separate from the command so it is testable)."""
    from smolvla.train.config import DatasetSpec, get_train_config

    cfg = get_train_config(preset, **_overrides(opts))
    if weights and len(weights) != len(datasets):
        raise typer.BadParameter(f"got {len(weights)} --dataset-weight values for {len(datasets)} --dataset paths")
    specs = tuple(DatasetSpec(root, w) for root, w in zip(datasets, weights or [1.0] * len(datasets), strict=True))
    data_kw: dict[str, Any] = {"datasets": specs}
    if num_workers is not None:
        data_kw["num_workers"] = num_workers
    init_kw: dict[str, Any] = {}
    if init is not None:
        init_kw["kind"] = init
        init_kw["path"] = init_path
    elif init_path is not None:
        raise typer.BadParameter("--init-path needs --init (checkpoint, lerobot or backbone)")
    if model_preset is not None:
        init_kw["model_preset"] = model_preset
    schedule_kw = {k: v for k, v in (schedule or {}).items() if v is not None}
    return dataclasses.replace(
        cfg,
        schedule=dataclasses.replace(cfg.schedule, **schedule_kw) if schedule_kw else cfg.schedule,
        data=dataclasses.replace(cfg.data, **data_kw),
        init=dataclasses.replace(cfg.init, **init_kw) if init_kw else cfg.init,
        optimizer=dataclasses.replace(cfg.optimizer, lr=lr) if lr is not None else cfg.optimizer,
    )


def register(app: typer.Typer) -> None:
    """Add this area's subcommands to `app`."""

    @app.command()
    def train(
        preset: str = typer.Option("tiny_cpu", help="tiny_cpu | finetune | pretrain_mixture"),
        dataset: list[str] = typer.Option(..., "--dataset", help="LeRobot dataset dir (repeat for a mixture)"),
        dataset_weight: list[float] = typer.Option(None, "--dataset-weight", help="mixture weight per --dataset"),
        steps: int = typer.Option(None),
        batch_size: int = typer.Option(None),
        seed: int = typer.Option(None),
        output_dir: str = typer.Option(None),
        resume: bool = typer.Option(False, help="continue from <output-dir>/checkpoints/last"),
        init: str = typer.Option(None, help="scratch | checkpoint | lerobot | backbone"),
        init_path: str = typer.Option(None, help="directory for --init checkpoint/lerobot/backbone"),
        model_preset: str = typer.Option(None, help="architecture preset for scratch/backbone init"),
        freeze: str = typer.Option(None, help="expert_only | vision_frozen | full"),
        lr: float = typer.Option(None, help="peak learning rate"),
        warmup_steps: int = typer.Option(None, help="linear warmup steps (schedule)"),
        decay_steps: int = typer.Option(None, help="step at which the cosine decay reaches --decay-lr"),
        decay_lr: float = typer.Option(None, help="learning rate at the end of the cosine decay"),
        save_every: int = typer.Option(None),
        keep_last_n: int = typer.Option(None),
        log_every: int = typer.Option(None),
        device: str = typer.Option(None, help="cpu | cuda | cuda:N"),
        backend: str = typer.Option(None, help="single | accelerate"),
        mixed_precision: str = typer.Option(None, help="no | bf16 (CUDA only)"),
        num_workers: int = typer.Option(None),
        num_threads: int = typer.Option(None, help="torch CPU threads (tiny_cpu preset: 1)"),
        tensorboard: bool = typer.Option(False),
    ) -> None:
        """Train (or finetune) a SmolVLA policy on local LeRobot datasets."""
        from smolvla.train.loop import main

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        try:
            cfg = build_config(
                preset, dataset, dataset_weight, init, init_path, model_preset, lr, num_workers,
                schedule={"warmup_steps": warmup_steps, "decay_steps": decay_steps, "decay_lr": decay_lr},
                steps=steps, batch_size=batch_size, seed=seed, output_dir=output_dir, resume=resume,
                freeze=freeze, save_every=save_every, keep_last_n=keep_last_n, log_every=log_every,
                device=device, backend=backend, mixed_precision=mixed_precision, tensorboard=tensorboard,
                num_threads=num_threads,
            )  # fmt: skip
        except ValueError as e:
            raise typer.BadParameter(str(e)) from e
        result = main(cfg)
        typer.echo(
            f"done: step {result.step}, loss {result.last_loss:.4f}, {result.samples_per_s:.1f} samples/s, "
            f"checkpoint {result.checkpoint}"
        )
