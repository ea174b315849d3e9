"""Training data: check datasets against the policy before any compute, then stream batches.

Everything here reads only dataset metadata (`meta/info.json`, `meta/stats.json`, episodes) until the
checks pass, so a missing camera, a state-size mismatch or absent statistics fail in milliseconds
instead of after the model is built and the first batch decoded.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from smolvla.data.dataset import LeRobotDataset
from smolvla.data.meta import DatasetMeta, load_meta
from smolvla.data.stats import aggregate_stats
from smolvla.policy.config import PolicyConfig
from smolvla.policy.normalize import NormStats
from smolvla.policy.tokenizer import TaskTokenizer
from smolvla.train.config import DataConfig
from smolvla.train.sampler import ResumableBatchSampler, SamplerState
from smolvla.types import ACTION, OBS_STATE

logger = logging.getLogger(__name__)


def load_metas(cfg: DataConfig) -> list[DatasetMeta]:
    """Metadata of every dataset in the config (validated by the data package)."""
    if not cfg.datasets:
        raise ValueError("no training dataset given: set data.datasets (CLI: --dataset DIR)")
    return [load_meta(spec.root) for spec in cfg.datasets]


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


def check_task_budget(metas: Sequence[DatasetMeta], tokenizer: TaskTokenizer, shown: int = 10) -> None:
    """Every task string of every dataset must fit the policy's token budget; otherwise the first batch
    holding an over-long task would stop the run, possibly hours in. One error lists them all."""
    if tokenizer.truncate:
        return
    over = []
    for meta in metas:
        for task, n in zip(meta.tasks, tokenizer.lengths(list(meta.tasks)), strict=True):
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
    """Normalisation stats for training: one dataset's own, or the count-weighted pool of a mixture."""
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


def open_datasets(metas: Sequence[DatasetMeta], cfg: PolicyConfig) -> list[Dataset]:
    """Open each dataset with an action chunk of `chunk_size` future steps (at the dataset's own fps)."""
    out = []
    for meta in metas:
        deltas = {ACTION: [i / meta.fps for i in range(cfg.chunk_size)]}
        out.append(LeRobotDataset(meta.root, delta_timestamps=deltas))
    return out


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
) -> tuple[DataLoader, ResumableBatchSampler]:
    """An endless DataLoader over the (mixture of) datasets, positioned at `state`."""
    unused = sorted({k for m in metas for k in m.camera_keys if k not in policy_cfg.camera_keys})
    wrapped = [_SelectKeys(d, unused) if unused else d for d in datasets]
    sizes = [len(d) for d in wrapped]  # type: ignore[arg-type]
    weights = [s.weight for s in data_cfg.datasets] if data_cfg.is_mixture else None
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
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=data_cfg.num_workers > 0,
    )
    return loader, sampler
