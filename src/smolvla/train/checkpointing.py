"""Training checkpoints: safetensors + JSON only, written atomically, last N kept.

Layout of `<output_dir>/checkpoints/`::

    00000200/
      pretrained_model/         policy.save_pretrained(...) (config, weights, normalisation stats)
      train_config.json         the TrainConfig of the run
      training_state/
        optimizer_state.safetensors   every optimiser state tensor, keys "state.<param index>.<name>"
        optimizer_state.json          param groups + non-tensor per-param values
        scheduler_state.json          LambdaLR state (plain numbers)
        rng_state.safetensors         torch (and CUDA) generator states, numpy's MT19937 key
        rng_state.json                the rest of numpy's state, python's `random` state
        training_step.json            {"step": ..., "sampler": {"epoch": ..., "offset": ...}}
    last -> 00000200            symlink, replaced atomically

A checkpoint is assembled in a temporary sibling directory, fsynced and renamed into place
(`policy.atomic_dir`), so a crash mid-write never leaves a directory that looks complete, and the next save
or resume removes the temporary directory it left.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from smolvla.policy.atomic_dir import atomic_dir, remove_stale, replace_symlink

logger = logging.getLogger(__name__)

PRETRAINED_DIR = "pretrained_model"
STATE_DIR = "training_state"
LAST = "last"
STEP_DIGITS = 8  # checkpoint directory names: the step, zero-padded so that names sort by step


@dataclass(frozen=True)
class TrainingProgress:
    """What the loop needs besides tensors to continue: the step reached and the data position."""

    step: int
    sampler: dict[str, int]


# ---- optimiser state: nested dict of tensors <-> flat safetensors + JSON --------------------------------------


def flatten_optimizer_state(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split `optimizer.state_dict()` into flat tensors and JSON metadata (no pickle)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, per_param in state["state"].items():
        for name, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{idx}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[name] = value
    meta = {"param_groups": state["param_groups"], "scalars": scalars, "param_ids": [str(i) for i in state["state"]]}
    json.dumps(meta)  # fail here, before writing, if a value is not JSON (never fall back to pickle)
    return tensors, meta


def unflatten_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Inverse of `flatten_optimizer_state`."""
    state: dict[int, dict[str, Any]] = {int(i): dict(meta["scalars"].get(i, {})) for i in meta["param_ids"]}
    for key, value in tensors.items():
        parts = key.split(".", 2)
        if len(parts) != 3 or parts[0] != "state" or not parts[1].isdigit() or int(parts[1]) not in state:
            raise ValueError(f"unexpected optimizer tensor key {key!r}; expected 'state.<index>.<name>'")
        state[int(parts[1])][parts[2]] = value
    groups = [dict(g, betas=tuple(g["betas"])) if "betas" in g else g for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


# ---- RNG states ----------------------------------------------------------------------------------------------


def capture_rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """torch/CUDA/numpy/python RNG states as (tensors, JSON)."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    tensors["numpy.key"] = torch.from_numpy(np.asarray(key, dtype=np.uint32).astype(np.int64))
    version, internal, gauss_next = random.getstate()
    meta = {
        "numpy": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(gauss)},
        "python": {"version": version, "state": list(internal), "gauss_next": gauss_next},
    }
    return tensors, meta


def restore_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[f"cuda.{i}"] for i in range(len(tensors)) if f"cuda.{i}" in tensors]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    n = meta["numpy"]
    key = tensors["numpy.key"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], key, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = meta["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


# ---- save / load ---------------------------------------------------------------------------------------------


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def save_training_state(
    state_dir: Path,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    progress: TrainingProgress,
) -> None:
    """Write optimiser, scheduler, RNG states and progress into `state_dir` (created)."""
    state_dir.mkdir(parents=True, exist_ok=False)
    opt_tensors, opt_meta = flatten_optimizer_state(optimizer.state_dict())
    save_file(opt_tensors, str(state_dir / "optimizer_state.safetensors"))
    _write_json(state_dir / "optimizer_state.json", opt_meta)
    _write_json(state_dir / "scheduler_state.json", scheduler.state_dict())
    rng_tensors, rng_meta = capture_rng_state()
    save_file(rng_tensors, str(state_dir / "rng_state.safetensors"))
    _write_json(state_dir / "rng_state.json", rng_meta)
    _write_json(state_dir / "training_step.json", {"step": progress.step, "sampler": progress.sampler})


def load_training_state(
    state_dir: Path,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> TrainingProgress:
    """Restore what `save_training_state` wrote (RNG states included); returns the progress."""
    expected = [
        "optimizer_state.safetensors",
        "optimizer_state.json",
        "scheduler_state.json",
        "rng_state.safetensors",
        "rng_state.json",
        "training_step.json",
    ]
    missing = [name for name in expected if not (state_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"training state {state_dir} is incomplete: missing {missing}")
    opt_meta = json.loads((state_dir / "optimizer_state.json").read_text())
    optimizer.load_state_dict(
        unflatten_optimizer_state(load_file(str(state_dir / "optimizer_state.safetensors")), opt_meta)
    )
    scheduler.load_state_dict(json.loads((state_dir / "scheduler_state.json").read_text()))
    restore_rng_state(
        load_file(str(state_dir / "rng_state.safetensors")), json.loads((state_dir / "rng_state.json").read_text())
    )
    d = json.loads((state_dir / "training_step.json").read_text())
    return TrainingProgress(step=int(d["step"]), sampler=dict(d["sampler"]))


def save_checkpoint(
    checkpoints_dir: Path,
    step: int,
    save_policy: Callable[[Path], None],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    progress: TrainingProgress,
    train_config_json: str,
    keep_last_n: int | None,
    save_extra_state: Callable[[Path], None] | None = None,
) -> Path:
    """Write checkpoint `step` atomically, point `last` at it and prune old ones; returns its directory.

    Re-saving a step (e.g. after a resume) replaces the old copy; leftovers of a killed save are removed.
    `save_extra_state(state_dir)` writes training-only modules (e.g. an auxiliary head) beside the optimiser.
    """
    final = checkpoints_dir / f"{step:0{STEP_DIGITS}d}"
    with atomic_dir(final) as tmp:
        save_policy(tmp / PRETRAINED_DIR)
        (tmp / "train_config.json").write_text(train_config_json)
        save_training_state(tmp / STATE_DIR, optimizer, scheduler, progress)
        if save_extra_state is not None:
            save_extra_state(tmp / STATE_DIR)
    replace_symlink(checkpoints_dir / LAST, final.name)  # relative: the run directory can be moved
    if keep_last_n is not None:
        prune_checkpoints(checkpoints_dir, keep_last_n)
    logger.info("saved checkpoint %s", final)
    return final


def list_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """Completed checkpoint directories, oldest first."""
    if not checkpoints_dir.is_dir():
        return []
    return sorted(p for p in checkpoints_dir.iterdir() if p.is_dir() and not p.is_symlink() and p.name.isdigit())


def prune_checkpoints(checkpoints_dir: Path, keep_last_n: int) -> None:
    for old in list_checkpoints(checkpoints_dir)[:-keep_last_n]:
        shutil.rmtree(old)
        logger.info("removed old checkpoint %s", old)


def last_checkpoint(checkpoints_dir: Path) -> Path:
    """The directory `last` points to (after removing what a killed save left); a clear error when there is
    none to resume from."""
    remove_stale(checkpoints_dir)
    link = checkpoints_dir / LAST
    if not link.exists():
        found = [p.name for p in list_checkpoints(checkpoints_dir)]
        raise FileNotFoundError(
            f"cannot resume: no '{LAST}' checkpoint pointer in {checkpoints_dir} (checkpoints found: {found})"
        )
    return link.resolve()
