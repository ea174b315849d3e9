"""Training configuration: frozen dataclasses and named presets.

Architecture sizes live in `smolvla.model.config`; this file holds everything that decides *how* a
policy is trained: optimiser, learning-rate schedule, which parameters train, where the weights start,
which data is read, and how often to log, evaluate and save. `get_train_config("tiny_cpu")` is the
preset every CPU test uses; `"finetune"` and `"pretrain_mixture"` are the paper's recipes.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from smolvla import configio
from smolvla.data.mixture import MixtureConfig

FreezeMode = Literal["vision_frozen", "expert_only", "full"]
InitKind = Literal["scratch", "checkpoint", "lerobot", "backbone"]
Backend = Literal["single", "accelerate"]
MixedPrecision = Literal["no", "bf16"]
TokenizerKind = Literal["bpe", "byte"]
TaskPadding = Literal["longest", "budget"]


@dataclass(frozen=True)
class OptimizerConfig:
    """AdamW with global grad-norm clipping (the SmolVLA paper's values)."""

    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 1e-10
    grad_clip_norm: float = 10.0

    def __post_init__(self) -> None:
        configio.check_fields(self)
        if self.lr <= 0:
            raise ValueError(f"OptimizerConfig.lr must be > 0, got {self.lr}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"OptimizerConfig.betas must be two values in [0, 1), got {self.betas}")
        if self.grad_clip_norm <= 0:
            raise ValueError(f"OptimizerConfig.grad_clip_norm must be > 0, got {self.grad_clip_norm}")


@dataclass(frozen=True)
class ScheduleConfig:
    """Linear warmup from 0 to the peak lr, then cosine decay to `decay_lr` at `decay_steps`, then flat.

    Steps left as None follow the run's length (`resolve(steps)`), so a longer or shorter run keeps the
    shape of its schedule: `decay_steps` None decays to the run's last step; `warmup_steps` None warms up
    for `warmup_fraction` of the decay horizon (1/30: the paper's 1000 of 30,000 steps).
    """

    warmup_steps: int | None = None
    decay_steps: int | None = None
    decay_lr: float = 2.5e-6
    warmup_fraction: float = 1 / 30

    def __post_init__(self) -> None:
        configio.check_fields(self)
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise ValueError(f"ScheduleConfig.warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.decay_steps is not None and self.decay_steps < 1:
            raise ValueError(f"ScheduleConfig.decay_steps must be >= 1, got {self.decay_steps}")
        if self.warmup_steps is not None and self.decay_steps is not None and self.decay_steps <= self.warmup_steps:
            raise ValueError(
                f"ScheduleConfig.decay_steps ({self.decay_steps}) must exceed warmup_steps ({self.warmup_steps})"
            )
        if self.decay_lr < 0:
            raise ValueError(f"ScheduleConfig.decay_lr must be >= 0, got {self.decay_lr}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"ScheduleConfig.warmup_fraction must be in [0, 1), got {self.warmup_fraction}")

    def resolve(self, steps: int) -> ScheduleConfig:
        """The concrete schedule of a run of `steps` optimiser steps (every step count set)."""
        decay = self.decay_steps if self.decay_steps is not None else steps
        warmup = self.warmup_steps if self.warmup_steps is not None else round(self.warmup_fraction * decay)
        if warmup >= decay:
            source = "" if self.decay_steps is not None else ", the run's steps"
            raise ValueError(
                f"ScheduleConfig.warmup_steps ({warmup}) must be below decay_steps ({decay}{source}); "
                "lower the warmup (CLI: --warmup-steps) or lengthen the run (--steps, --decay-steps)"
            )
        return replace(self, warmup_steps=warmup, decay_steps=decay)


@dataclass(frozen=True)
class InitConfig:
    """Where the weights start.

    kind="scratch": random weights of the model preset `model_preset` (path unused).
    kind="checkpoint": a policy directory written by this package (`save_pretrained`).
    kind="lerobot": a LeRobot SmolVLA checkpoint directory (config.json + model.safetensors + stats).
    kind="backbone": a local SmolVLM2 backbone directory; expert and projections start random.

    tokenizer (scratch only; the other kinds bring their own tokenizer.json): "bpe" trains a byte-level BPE
    on the datasets' task strings (`smolvla.policy.subword`); "byte" is one token per UTF-8 byte (the
    tokenizer of the committed demo policy and of scratch runs made before "bpe" existed).
    max_task_tokens: the policy's task-token budget; None keeps the model preset's or the checkpoint's.
    The budget shapes no weight (it is only the length task tokens are padded to), so it can change when
    fine-tuning. Every dataset task must fit in it: training checks that before the first step.
    """

    kind: InitKind = "scratch"
    path: str | None = None
    model_preset: str = "tiny"
    tokenizer: TokenizerKind = "bpe"
    max_task_tokens: int | None = None

    def __post_init__(self) -> None:
        configio.check_fields(self)
        if self.kind == "scratch" and self.path is not None:
            raise ValueError(f"InitConfig.kind='scratch' takes no path, got path={self.path!r}")
        if self.kind != "scratch" and not self.path:
            raise ValueError(f"InitConfig.kind={self.kind!r} needs a path to a local directory, got {self.path!r}")
        if self.kind != "scratch" and self.tokenizer != "bpe":
            raise ValueError(
                f"InitConfig.tokenizer={self.tokenizer!r} applies to scratch init only; kind={self.kind!r} "
                "uses the tokenizer.json of its directory"
            )
        if self.max_task_tokens is not None and self.max_task_tokens < 1:
            raise ValueError(f"InitConfig.max_task_tokens must be >= 1 or None, got {self.max_task_tokens}")


@dataclass(frozen=True)
class DatasetSpec:
    """One LeRobot v3.0 dataset directory and its sampling weight inside a mixture."""

    root: str
    weight: float = 1.0

    def __post_init__(self) -> None:
        configio.check_fields(self)
        if self.weight <= 0:
            raise ValueError(f"DatasetSpec.weight for {self.root!r} must be > 0, got {self.weight}")


@dataclass(frozen=True)
class AugmentConfig:
    """Image augmentation strengths (`smolvla.data.augment`); 0 turns one off, all 0 (default) = none.

    shift: pixels the image moves by at most (pad and random crop); brightness / contrast / saturation:
    the factor is drawn from U[1 - s, 1 + s].
    """

    shift: int = 0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0

    def __post_init__(self) -> None:
        configio.check_fields(self)
        if self.shift < 0:
            raise ValueError(f"AugmentConfig.shift must be >= 0 pixels, got {self.shift}")
        for name in ("brightness", "contrast", "saturation"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"AugmentConfig.{name} must be in [0, 1), got {value}")

    @property
    def enabled(self) -> bool:
        return bool(self.shift or self.brightness or self.contrast or self.saturation)


@dataclass(frozen=True)
class DataConfig:
    """The training data, one of:

    datasets: one dataset, or several sharing cameras and state/action sizes (weighted, their statistics
        pooled): the policy keeps that layout (what fine-tuning on a robot's tasks uses);
    mixture: datasets of any layout mapped to the standard views and padded (`smolvla.data.mixture`, each
        normalised with its own statistics): the paper's pretraining (CLI: --mixture mix.json).
    cache_mb: memory per process for items whose frames were decoded once (`smolvla.data.cache`); 0 = off.
    augment: image augmentation (off by default). pad_tasks: "longest" pads task tokens to the batch's
        longest task, "budget" to the policy's fixed token budget (same loss; longest is faster).
    """

    datasets: tuple[DatasetSpec, ...] = ()
    mixture: MixtureConfig | None = None
    num_workers: int = 0
    shuffle: bool = True
    cache_mb: int = 1024
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    pad_tasks: TaskPadding = "longest"

    def __post_init__(self) -> None:
        configio.check_fields(self)
        if self.num_workers < 0:
            raise ValueError(f"DataConfig.num_workers must be >= 0, got {self.num_workers}")
        if self.cache_mb < 0:
            raise ValueError(f"DataConfig.cache_mb must be >= 0, got {self.cache_mb}")
        if self.mixture is not None and self.datasets:
            raise ValueError("DataConfig takes datasets or a mixture, not both (CLI: --dataset or --mixture)")

    @property
    def is_mixture(self) -> bool:
        """Several datasets, sampled by weight (a mixture file, or repeated --dataset)."""
        return self.mixture is not None or len(self.datasets) > 1

    @property
    def roots(self) -> tuple[str, ...]:
        return tuple(s.root for s in (self.mixture.datasets if self.mixture else self.datasets))

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(s.weight for s in (self.mixture.datasets if self.mixture else self.datasets))


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs besides the data on disk."""

    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    init: InitConfig = field(default_factory=InitConfig)
    data: DataConfig = field(default_factory=DataConfig)
    # Which parameters train (LeRobot's SmolVLAConfig: train_expert_only / freeze_vision_encoder):
    #   "expert_only"   the whole VLM (vision, connector, text decoder) is frozen; the action expert and the
    #                   state/action/time projections train (LeRobot's finetuning default);
    #   "vision_frozen" only the vision encoder is frozen;
    #   "full"          everything trains.
    freeze: FreezeMode = "expert_only"
    batch_size: int = 64
    steps: int = 30_000
    seed: int = 1000
    output_dir: str = "outputs/train"
    resume: bool = False
    save_every: int = 5000
    keep_last_n: int | None = 3
    log_every: int = 100
    eval_every: int | None = None
    device: str = "cpu"
    # torch intra-op threads for the run (None = torch's default); restored when `main` returns.
    num_threads: int | None = None
    backend: Backend = "single"
    # bf16 autocast is applied on CUDA only; on CPU it is refused rather than silently ignored.
    mixed_precision: MixedPrecision = "no"
    plot_loss: bool = True
    tensorboard: bool = False
    # A recipe that only means something from trained weights (finetune): a new run must name them (--init).
    require_init: bool = False
    # Weight of the auxiliary object-position loss (`smolvla.train.aux_state`; 0 = off). Needs datasets that
    # recorded "observation.environment_state" (`smolvla datagen so101`).
    aux_env_state: float = 0.0

    def __post_init__(self) -> None:
        configio.check_fields(self)
        for name in ("batch_size", "steps", "save_every", "log_every"):
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"TrainConfig.{name} must be > 0, got {value}")
        if self.keep_last_n is not None and self.keep_last_n < 1:
            raise ValueError(f"TrainConfig.keep_last_n must be >= 1 or None (keep all), got {self.keep_last_n}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"TrainConfig.num_threads must be >= 1 or None (torch default), got {self.num_threads}")
        if not self.aux_env_state >= 0.0:
            raise ValueError(f"TrainConfig.aux_env_state must be >= 0 (0 = off), got {self.aux_env_state}")
        if self.aux_env_state > 0 and self.data.mixture is not None:
            raise ValueError(
                "TrainConfig.aux_env_state needs plain datasets: a mixture does not carry observation.environment_state"
            )
        if self.eval_every is not None and self.eval_every < 1:
            raise ValueError(f"TrainConfig.eval_every must be >= 1 or None (never), got {self.eval_every}")
        if self.mixed_precision == "bf16" and not self.device.startswith("cuda"):
            raise ValueError(
                f"TrainConfig.mixed_precision='bf16' needs a CUDA device (bf16 autocast is GPU only), "
                f"got device={self.device!r}; use mixed_precision='no'"
            )

    def to_dict(self) -> dict[str, Any]:
        return configio.to_dict(self)

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, d: Any, *, source: str | None = None) -> TrainConfig:
        """Inverse of `to_dict`; unknown keys and wrong types are errors (`configio.from_dict`)."""
        return configio.from_dict(cls, d, source=source)

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"cannot parse JSON {path}: {e}") from e
        return cls.from_dict(data, source=str(path))


def _tiny_cpu() -> TrainConfig:
    # Trains the tiny model for a few hundred steps on a laptop CPU in minutes. A subword vocabulary
    # trained on the tasks and a 48-token budget hold every Meta-World instruction (MT50: <= 17 tokens).
    return TrainConfig(
        optimizer=OptimizerConfig(lr=1e-3),
        schedule=ScheduleConfig(warmup_fraction=0.05, decay_lr=1e-5),
        init=InitConfig(kind="scratch", model_preset="tiny", tokenizer="bpe", max_task_tokens=48),
        freeze="full",
        batch_size=8,
        steps=200,
        save_every=100,
        keep_last_n=2,
        log_every=10,
        seed=0,
        # The tiny model's matrices are too small to gain from threads; on a busy machine two OpenMP
        # threads spin-waiting on each other made steps 10-50x slower than one (measured: 4 s vs 0.07 s).
        num_threads=1,
    )


def _finetune() -> TrainConfig:
    # The paper's finetuning recipe (warmup 1/30 of the run: 1000 of 30,000 steps). Fine-tuning starts from
    # trained weights, whatever is frozen: --init/--init-path is required (`check_pretrained_start`), also
    # with --freeze full (a policy pretrained on a mixture is fine-tuned with --init checkpoint).
    return TrainConfig(
        freeze="expert_only", batch_size=64, steps=30_000, save_every=5000, log_every=100, require_init=True
    )


def _pretrain_mixture() -> TrainConfig:
    # Pretraining on a community-dataset mixture (the paper's stage 1): batch 256, 200k steps (warmup 1000),
    # vision encoder frozen, so it starts from a pretrained SmolVLM2 backbone (--init backbone --init-path
    # DIR). Without one, every part must train: --freeze full (the CPU recipe, scripts/pretrain_mixture.sh);
    # a frozen random encoder is refused (`check_pretrained_start`).
    return TrainConfig(
        init=InitConfig(kind="scratch", model_preset="smolvla_base"),
        freeze="vision_frozen",
        batch_size=256,
        steps=200_000,
        schedule=ScheduleConfig(warmup_fraction=0.005, decay_lr=2.5e-6),
        save_every=20_000,
        log_every=200,
    )


PRESETS = {"tiny_cpu": _tiny_cpu, "finetune": _finetune, "pretrain_mixture": _pretrain_mixture}


def get_train_config(name: str, **overrides: Any) -> TrainConfig:
    """Return the named training preset with top-level fields replaced by `overrides`.

    A misspelt name raises with the nearest preset names as suggestions.
    """
    if name not in PRESETS:
        near = difflib.get_close_matches(name, PRESETS, n=3, cutoff=0.4)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ValueError(f"unknown training preset {name!r}: expected one of {sorted(PRESETS)}{hint}")
    cfg = PRESETS[name]()
    return replace(cfg, **overrides) if overrides else cfg


# What each freeze mode keeps at its initial weights (see TrainConfig.freeze).
_FROZEN = {
    "expert_only": "the whole VLM (vision encoder, connector, text decoder)",
    "vision_frozen": "the vision encoder",
}


def check_pretrained_start(cfg: TrainConfig) -> None:
    """Refuse a new run that would freeze random weights: a frozen part must come from a pretrained model;
    and a new run of a recipe that requires trained weights (`require_init`: finetune) without them.

    A resumed run is exempt: its weights come from its own checkpoint, whatever `init` says.
    """
    if cfg.resume or cfg.init.kind != "scratch":
        return
    if cfg.freeze == "full":
        if not cfg.require_init:
            return
        raise ValueError(
            "this recipe fine-tunes trained weights, but init is 'scratch'; name them (CLI: --init "
            "checkpoint|lerobot|backbone --init-path DIR), or train from scratch with another preset (tiny_cpu)"
        )
    raise ValueError(
        f"freeze={cfg.freeze!r} keeps {_FROZEN[cfg.freeze]} at its initial weights, but init is 'scratch' "
        f"(random {cfg.init.model_preset!r} weights); start from pretrained weights (CLI: --init "
        "checkpoint|lerobot|backbone --init-path DIR) or train every parameter (--freeze full)"
    )
