"""`smolvla train`: build a TrainConfig from a named preset plus command-line overrides, then run it.

smolvla train --preset tiny_cpu --dataset DIR --steps 200 --batch-size 8 --output-dir runs/tiny
smolvla train --preset finetune --init lerobot --init-path ckpt/ --dataset DIR --device cuda
smolvla train --preset tiny_cpu --dataset DIR --output-dir runs/tiny --resume
smolvla train --preset pretrain_mixture --freeze full --model-preset small --mixture mix.json   (docs/mixtures.md)
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, get_args

import typer

from smolvla.cli.choices import choice_option, device_option
from smolvla.model.config import PRESETS as _MODEL_PRESETS
from smolvla.train.config import PRESETS as _TRAIN_PRESETS
from smolvla.train.config import Backend, FreezeMode, InitKind, MixedPrecision, TaskPadding, TokenizerKind

# The values the options accept, checked while the command line is parsed (before any data or weights load).
TRAIN_PRESETS = tuple(_TRAIN_PRESETS)
MODEL_PRESETS = tuple(_MODEL_PRESETS)
INIT_KINDS, FREEZE_MODES = get_args(InitKind), get_args(FreezeMode)
BACKENDS, MIXED_PRECISIONS = get_args(Backend), get_args(MixedPrecision)
TOKENIZER_KINDS, TASK_PADDINGS = get_args(TokenizerKind), get_args(TaskPadding)


def _overrides(opts: dict[str, Any]) -> dict[str, Any]:
    """Top-level TrainConfig fields given on the command line (None = keep the preset's value)."""
    names = (
        "steps", "batch_size", "seed", "output_dir", "save_every", "keep_last_n", "log_every", "eval_every",
        "device", "backend", "mixed_precision", "freeze", "num_threads", "aux_env_state",
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
    max_task_tokens: int | None = None,
    tokenizer: str | None = None,
    mixture: str | None = None,
    data_options: dict[str, Any] | None = None,
    augment: dict[str, Any] | None = None,
    **opts: Any,
):
    """The TrainConfig the command runs (separate from the command so it is testable). Refuses, before any
    data is read, a preset that freezes pretrained parts without --init (`check_pretrained_start`).

    mixture: a mixture file (read here: its errors name the file); data_options: DataConfig fields
    (cache_mb, pad_tasks); augment: AugmentConfig fields. None values keep the preset's."""
    from smolvla.data.mixture import load_mixture
    from smolvla.train.config import AugmentConfig, DatasetSpec, check_pretrained_start, get_train_config

    cfg = get_train_config(preset, **_overrides(opts))
    datasets = list(datasets or [])
    if bool(datasets) == (mixture is not None):
        raise typer.BadParameter(
            "give the training data as --dataset DIR (repeatable) or as --mixture FILE, one of them"
        )
    if weights and len(weights) != len(datasets):
        raise typer.BadParameter(f"got {len(weights)} --dataset-weight values for {len(datasets)} --dataset paths")
    specs = tuple(DatasetSpec(root, w) for root, w in zip(datasets, weights or [1.0] * len(datasets), strict=True))
    data_kw: dict[str, Any] = {"datasets": specs, "mixture": load_mixture(mixture) if mixture is not None else None}
    if num_workers is not None:
        data_kw["num_workers"] = num_workers
    data_kw |= {k: v for k, v in (data_options or {}).items() if v is not None}
    augment_kw = {k: v for k, v in (augment or {}).items() if v is not None}
    if augment_kw:
        data_kw["augment"] = AugmentConfig(**augment_kw)
    init_kw: dict[str, Any] = {}
    if init is not None:
        init_kw["kind"] = init
        init_kw["path"] = init_path
    elif init_path is not None:
        raise typer.BadParameter("--init-path needs --init (checkpoint, lerobot or backbone)")
    if model_preset is not None:
        init_kw["model_preset"] = model_preset
    if max_task_tokens is not None:
        init_kw["max_task_tokens"] = max_task_tokens
    if tokenizer is not None:
        init_kw["tokenizer"] = tokenizer
    schedule_kw = {k: v for k, v in (schedule or {}).items() if v is not None}
    cfg = dataclasses.replace(
        cfg,
        schedule=dataclasses.replace(cfg.schedule, **schedule_kw) if schedule_kw else cfg.schedule,
        data=dataclasses.replace(cfg.data, **data_kw),
        init=dataclasses.replace(cfg.init, **init_kw) if init_kw else cfg.init,
        optimizer=dataclasses.replace(cfg.optimizer, lr=lr) if lr is not None else cfg.optimizer,
    )
    check_pretrained_start(cfg)
    cfg.schedule.resolve(cfg.steps)  # a warmup longer than the run fails here, not after the data loaded
    return cfg


def register(app: typer.Typer) -> None:
    """Add this area's subcommands to `app`."""

    @app.command()
    def train(
        preset: str = choice_option(
            "tiny_cpu", TRAIN_PRESETS, help="training preset: optimiser, schedule, steps, freezing, init"
        ),
        dataset: list[str] = typer.Option(
            None, "--dataset", metavar="DIR", help="LeRobot dataset (repeat for datasets of one layout)"
        ),
        mixture: str = typer.Option(
            None, metavar="FILE", help="mixture file: datasets of any layout, camera mapping (docs/mixtures.md)"
        ),
        dataset_weight: list[float] = typer.Option(
            None, "--dataset-weight", metavar="W", help="weight of each --dataset"
        ),
        steps: int = typer.Option(None, min=1, help="optimiser steps (default: the preset's)"),
        batch_size: int = typer.Option(None, min=1, help="samples per step"),
        seed: int = typer.Option(None, help="seed of weights init, data order and noise"),
        output_dir: str = typer.Option(None, metavar="DIR", help="run folder: checkpoints, metrics, plots"),
        resume: bool = typer.Option(False, help="continue from <output-dir>/checkpoints/last"),
        init: str = choice_option(None, INIT_KINDS, help="where the weights start"),
        init_path: str = typer.Option(None, metavar="DIR", help="directory for --init checkpoint, lerobot or backbone"),
        model_preset: str = choice_option(None, MODEL_PRESETS, help="architecture for --init scratch or backbone"),
        max_task_tokens: int = typer.Option(
            None, min=1, help="task-token budget of the policy (tiny_cpu: 48; default: the model's)"
        ),
        tokenizer: str = choice_option(
            None, TOKENIZER_KINDS, help="--init scratch vocabulary: BPE learned from the tasks, or bytes"
        ),
        freeze: str = choice_option(None, FREEZE_MODES, help="which parameters train"),
        lr: float = typer.Option(None, help="peak learning rate"),
        warmup_steps: int = typer.Option(
            None, min=0, help="linear warmup steps (default: the preset's fraction of the decay steps)"
        ),
        decay_steps: int = typer.Option(
            None, min=1, help="step at which the cosine decay reaches --decay-lr (default: --steps)"
        ),
        decay_lr: float = typer.Option(None, help="learning rate at the end of the cosine decay"),
        save_every: int = typer.Option(None, min=1, help="steps between checkpoints"),
        keep_last_n: int = typer.Option(None, min=1, help="checkpoints to keep (older ones are deleted)"),
        log_every: int = typer.Option(None, min=1, help="steps between metrics.jsonl records"),
        device: str = device_option(None, help="torch device to train on"),
        backend: str = choice_option(None, BACKENDS, help="one process, or accelerate's launcher"),
        mixed_precision: str = choice_option(None, MIXED_PRECISIONS, help="bf16 autocast (CUDA only)"),
        num_workers: int = typer.Option(None, min=0, help="data loader worker processes"),
        num_threads: int = typer.Option(None, min=1, help="torch CPU threads (tiny_cpu preset: 1)"),
        tensorboard: bool = typer.Option(False, help="also write TensorBoard event files"),
        cache_mb: int = typer.Option(None, min=0, help="memory for decoded frames per process, MB (0: off)"),
        pad_tasks: str = choice_option(
            None, TASK_PADDINGS, help="pad task tokens to the batch's longest task or to the fixed budget"
        ),
        augment_shift: int = typer.Option(None, min=0, help="random image shift, at most this many pixels"),
        augment_brightness: float = typer.Option(None, min=0.0, max=0.99, help="brightness jitter strength"),
        augment_contrast: float = typer.Option(None, min=0.0, max=0.99, help="contrast jitter strength"),
        augment_saturation: float = typer.Option(None, min=0.0, max=0.99, help="saturation jitter strength"),
        aux_env_state: float = typer.Option(
            None, min=0.0, help="weight of the auxiliary object-position loss (needs observation.environment_state)"
        ),
    ) -> None:
        """Train (or finetune) a SmolVLA policy on local LeRobot datasets."""
        from smolvla.train.loop import main

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        try:
            cfg = build_config(
                preset, dataset, dataset_weight, init, init_path, model_preset, lr, num_workers,
                schedule={"warmup_steps": warmup_steps, "decay_steps": decay_steps, "decay_lr": decay_lr},
                max_task_tokens=max_task_tokens, tokenizer=tokenizer, mixture=mixture,
                data_options={"cache_mb": cache_mb, "pad_tasks": pad_tasks},
                augment={"shift": augment_shift, "brightness": augment_brightness,
                         "contrast": augment_contrast, "saturation": augment_saturation},
                steps=steps, batch_size=batch_size, seed=seed, output_dir=output_dir, resume=resume,
                freeze=freeze, save_every=save_every, keep_last_n=keep_last_n, log_every=log_every,
                device=device, backend=backend, mixed_precision=mixed_precision, tensorboard=tensorboard,
                num_threads=num_threads, aux_env_state=aux_env_state,
            )  # fmt: skip
        except ValueError as e:
            raise typer.BadParameter(str(e)) from e
        result = main(cfg)
        typer.echo(
            f"done: step {result.step}, loss {result.last_loss:.4f}, {result.samples_per_s:.1f} samples/s, "
            f"checkpoint {result.checkpoint}"
        )
