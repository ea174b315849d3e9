"""Training data: check datasets against the policy before any compute, then stream batches.

Everything here reads only dataset metadata (`meta/info.json`, `meta/stats.json`, episodes) until the
checks pass, so a missing camera, a state-size mismatch or absent statistics fail in milliseconds
instead of after the model is built and the first batch decoded.

Two kinds of data, one stream (`make_dataloader`: one resumable weighted sampler, one collate):
- datasets of one layout (`DataConfig.datasets`): items as LeRobot returns them; the policy has their
  cameras and sizes and normalises with their (pooled) statistics;
- a mixture (`DataConfig.mixture`): every dataset mapped to the standard layout by
  `smolvla.data.mixture_dataset` (views image1-3 with masks, vectors padded to the model's 32 slots and
  normalised per dataset); the policy then has the standard cameras, 32-dim state/action and no
  normalisation of its own (`mixture_policy_inputs`).
Decoded frames are kept in memory up to `DataConfig.cache_mb` (`smolvla.data.cache`), augmentation is
applied after the cache, and task strings are tokenised in the loader, padded to the batch's longest task.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, default_collate

from smolvla.data.augment import augment_item
from smolvla.data.cache import DecodedFrames
from smolvla.data.dataset import LeRobotDataset
from smolvla.data.meta import DatasetMeta, load_meta
from smolvla.data.mixture import VIEWS, MixtureConfig, check_source, relabelled_tasks
from smolvla.data.mixture_dataset import MixtureSourceDataset
from smolvla.data.stats import aggregate_stats
from smolvla.model.config import ModelConfig
from smolvla.policy.config import PolicyConfig
from smolvla.policy.normalize import NormStats
from smolvla.policy.tokenizer import TaskTokenizer
from smolvla.train.config import AugmentConfig, DataConfig
from smolvla.train.sampler import ResumableBatchSampler, SamplerState
from smolvla.types import ACTION, OBS_LANG_MASK, OBS_LANG_TOKENS, OBS_STATE, TASK

logger = logging.getLogger(__name__)


def load_metas(cfg: DataConfig) -> list[DatasetMeta]:
    """Metadata of every dataset in the config (validated by the data package)."""
    if not cfg.roots:
        raise ValueError("no training dataset given: set data.datasets or data.mixture (CLI: --dataset DIR)")
    return [load_meta(root) for root in cfg.roots]


def mixture_policy_inputs(model: ModelConfig) -> dict[str, Any]:
    """PolicyConfig fields of a policy trained on a mixture: the standard views, the model's padded sizes,
    and no normalisation of its own (each dataset is normalised with its own statistics when read)."""
    return {
        "camera_keys": VIEWS,
        "state_dim": model.max_state_dim,
        "action_dim": model.max_action_dim,
        "state_norm": "identity",
        "action_norm": "identity",
    }


def is_mixture_layout(cfg: PolicyConfig) -> bool:
    """Whether `cfg` is the layout `mixture_policy_inputs` gives (a mixture-trained checkpoint)."""
    return cfg.camera_keys == VIEWS and cfg.norm_modes() == {OBS_STATE: "identity", ACTION: "identity"}


def check_mixture(mixture: MixtureConfig, metas: Sequence[DatasetMeta], model: ModelConfig) -> None:
    """Camera mappings, sizes and statistics of every mixture dataset, from metadata only."""
    for source, meta in zip(mixture.datasets, metas, strict=True):
        check_source(source, meta, model.max_state_dim, model.max_action_dim)


def training_tasks(metas: Sequence[DatasetMeta], mixture: MixtureConfig | None = None) -> list[list[str]]:
    """Per dataset, its task strings as training sees them (a mixture's relabel tables applied)."""
    if mixture is None:
        return [list(m.tasks) for m in metas]
    return [relabelled_tasks(src, m) for src, m in zip(mixture.datasets, metas, strict=True)]


def _vector_dim(meta: DatasetMeta, key: str) -> int:
    feat = meta.features.get(key)
    if feat is None:
        raise ValueError(f"dataset {meta.root} has no feature {key!r}; features: {sorted(meta.features)}")
    shape = list(feat["shape"])
    if len(shape) != 1:
        raise ValueError(f"dataset {meta.root}: feature {key!r} must be a vector, got shape {shape}")
    return int(shape[0])


def policy_inputs_from_meta(meta: DatasetMeta) -> dict[str, Any]:
    """PolicyConfig fields implied by a dataset: its cameras (info.json order), state and action sizes."""
    if not meta.camera_keys:
        raise ValueError(f"dataset {meta.root} has no camera features; SmolVLA needs at least one")
    return {
        "camera_keys": tuple(meta.camera_keys),
        "state_dim": _vector_dim(meta, OBS_STATE),
        "action_dim": _vector_dim(meta, ACTION),
    }


def check_dataset_matches_policy(meta: DatasetMeta, cfg: PolicyConfig) -> None:
    """Raise ValueError naming the dataset and the mismatch if it cannot feed a policy with `cfg`."""
    missing = [k for k in cfg.camera_keys if k not in meta.camera_keys]
    if missing:
        raise ValueError(
            f"dataset {meta.root} lacks camera(s) {missing} that the policy needs; "
            f"policy cameras {list(cfg.camera_keys)}, dataset cameras {meta.camera_keys}"
        )
    for key, want in ((OBS_STATE, cfg.state_dim), (ACTION, cfg.action_dim)):
        got = _vector_dim(meta, key)
        if got != want:
            raise ValueError(f"dataset {meta.root}: {key!r} has dimension {got} but the policy expects {want}")
    unused = [k for k in meta.camera_keys if k not in cfg.camera_keys]
    if unused:
        # Their frames are still decoded by the dataset, then dropped from each item (see `_SelectKeys`).
        logger.warning("dataset %s: cameras %s are not inputs of the policy; they are dropped", meta.root, unused)


def check_task_budget(
    metas: Sequence[DatasetMeta], tokenizer: TaskTokenizer, shown: int = 10, mixture: MixtureConfig | None = None
) -> None:
    """Every task string of every dataset must fit the policy's token budget; otherwise the first batch
    holding an over-long task would stop the run, possibly hours in. One error lists them all."""
    if tokenizer.truncate:
        return
    over = []
    for meta, tasks in zip(metas, training_tasks(metas, mixture), strict=True):
        for task, n in zip(tasks, tokenizer.lengths(tasks), strict=True):
            if n > tokenizer.max_length:
                over.append((n, task, meta.root))
    if not over:
        return
    over.sort(key=lambda o: -o[0])
    listed = "; ".join(f"{task!r:.80} ({n} tokens, {root})" for n, task, root in over[:shown])
    more = f"; and {len(over) - shown} more" if len(over) > shown else ""
    raise ValueError(
        f"{len(over)} dataset task(s) exceed the policy's budget of {tokenizer.max_length} tokens: {listed}{more}; "
        f"raise the budget to at least {over[0][0]} (CLI: --max-task-tokens {over[0][0]}; Python: "
        "InitConfig.max_task_tokens) or shorten the tasks (smolvla relabel)"
    )


def check_stats(meta: DatasetMeta) -> None:
    """The normalisation statistics the policy needs must be on disk (meta/stats.json)."""
    path = Path(meta.root) / "meta" / "stats.json"
    if not meta.stats:
        raise FileNotFoundError(
            f"dataset {meta.root} has no normalisation statistics ({path} is missing); "
            "training needs the mean/std of observation.state and action"
        )
    for key in (OBS_STATE, ACTION):
        have = sorted(meta.stats.get(key, {}))
        if not {"mean", "std"} <= set(have):
            raise ValueError(f"{path}: {key!r} needs 'mean' and 'std' statistics, found {have}")


def training_stats(metas: Sequence[DatasetMeta], cfg: PolicyConfig) -> NormStats:
    """Normalisation stats for training: one dataset's own, or the count-weighted pool of datasets of one
    layout. A mixture-layout policy normalises nothing itself (its datasets are normalised when read)."""
    if is_mixture_layout(cfg):
        return NormStats.from_flat({}, cfg.feature_dims(), cfg.norm_modes(), source="mixture")
    for meta in metas:
        check_stats(meta)
    keys = (OBS_STATE, ACTION)
    if len(metas) == 1:
        picked = metas[0].stats
    else:
        missing = [str(m.root) for m in metas if any("count" not in m.stats[k] for k in keys)]
        if missing:
            raise ValueError(f"pooling mixture statistics needs 'count' in stats.json; absent in {missing}")
        picked = aggregate_stats([{k: m.stats[k] for k in keys} for m in metas])
    flat = {
        f"{k}.{s}": torch.as_tensor(np.asarray(picked[k][s], dtype=np.float32)) for k in keys for s in ("mean", "std")
    }
    return NormStats.from_flat(flat, cfg.feature_dims(), cfg.norm_modes(), source="dataset stats")


def open_datasets(metas: Sequence[DatasetMeta], cfg: PolicyConfig, data: DataConfig) -> list[Dataset]:
    """Each dataset with an action chunk of `chunk_size` future steps (at the dataset's own fps), its decoded
    frames cached (`data.cache_mb`, shared in proportion to frames), seen in the mixture's standard layout
    when `data.mixture` is set, and augmented when `data.augment` asks for it."""
    total = sum(m.total_frames for m in metas) or 1
    out: list[Dataset] = []
    for i, meta in enumerate(metas):
        deltas = {ACTION: [k / meta.fps for k in range(cfg.chunk_size)]}
        base = LeRobotDataset(meta.root, delta_timestamps=deltas, return_uint8=True)
        ds: Dataset = DecodedFrames(base, data.cache_mb * 2**20 * meta.total_frames // total)
        if data.mixture is not None:
            m = cfg.model
            ds = MixtureSourceDataset(
                ds, meta, data.mixture.datasets[i], i, cfg.image_size, m.max_state_dim, m.max_action_dim
            )
        if data.augment.enabled:
            ds = _Augmented(ds, data.augment)
        out.append(ds)
    return out


class _Augmented(Dataset):
    """Camera images of `base`'s items augmented (`smolvla.data.augment`)."""

    def __init__(self, base: Dataset, cfg: AugmentConfig) -> None:
        self.base, self.cfg = base, cfg

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict[str, Any]:
        c = self.cfg
        return augment_item(self.base[i], c.shift, c.brightness, c.contrast, c.saturation)


class TokenizingCollate:
    """default_collate, then the batch's task strings tokenised (`observation.language.tokens` / mask), padded
    to the batch's longest task (`pad="longest"`) or to the policy's budget (`"budget"`). Padding is masked
    out of attention and takes no position, so the loss is the same; shorter sequences are cheaper."""

    def __init__(self, tokenizer: TaskTokenizer | None, pad: str) -> None:
        self.tokenizer, self.pad = tokenizer, pad

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        batch = default_collate(items)
        if self.tokenizer is not None:
            tokens, mask = self.tokenizer(list(batch[TASK]))
            if self.pad == "longest":
                width = max(int(mask.sum(1).max()), 1)
                tokens, mask = tokens[:, :width], mask[:, :width]
            batch[OBS_LANG_TOKENS], batch[OBS_LANG_MASK] = tokens, mask
        return batch


class _SelectKeys(Dataset):
    """Keep only the keys the policy reads (cameras it does not use would fail its strict key check)."""

    def __init__(self, base: Dataset, drop: Sequence[str]) -> None:
        self.base = base
        self.drop = tuple(drop)

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.base[i]
        return {k: v for k, v in item.items() if k not in self.drop}


def make_dataloader(
    datasets: Sequence[Dataset],
    metas: Sequence[DatasetMeta],
    policy_cfg: PolicyConfig,
    data_cfg: DataConfig,
    batch_size: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    state: SamplerState | None = None,
    tokenizer: TaskTokenizer | None = None,
) -> tuple[DataLoader, ResumableBatchSampler]:
    """An endless DataLoader over the (mixture of) datasets, positioned at `state`; with a `tokenizer`, batches
    carry the tokenised tasks (`TokenizingCollate`)."""
    unused = sorted({k for m in metas for k in m.camera_keys if k not in policy_cfg.camera_keys})
    wrapped = [_SelectKeys(d, unused) if unused and data_cfg.mixture is None else d for d in datasets]
    sizes = [len(d) for d in wrapped]  # type: ignore[arg-type]
    weights = list(data_cfg.weights) if len(sizes) > 1 else None  # one dataset: a plain shuffled pass
    sampler = ResumableBatchSampler(
        sizes,
        batch_size,
        seed,
        shuffle=data_cfg.shuffle,
        weights=weights,
        rank=rank,
        world_size=world_size,
        state=state,
    )
    # A private generator: the DataLoader otherwise draws its worker base seed from the global torch RNG
    # each time an iterator is created, which would shift the training noise after a resume.
    loader = DataLoader(
        ConcatDataset(wrapped),
        batch_sampler=sampler,
        num_workers=data_cfg.num_workers,
        collate_fn=TokenizingCollate(tokenizer, data_cfg.pad_tasks),
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=data_cfg.num_workers > 0,
    )
    return loader, sampler
