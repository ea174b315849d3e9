"""Auxiliary training target: regress the scene's object positions from the policy's image tokens.

Why: a policy trained by flow matching alone learns to find the cube only weakly (most frames of a
demonstration need no precise object position, so the action loss says little about it), and the
SO-101 suite's grasp error measured it: the policy misjudges where the cube is by centimetres while the
same vision tower, trained to regress the cube's position, finds it within millimetres
(`benchmarks/so101_localization_probe.py`). Scripted recordings keep the privileged object poses as
"observation.environment_state" (`SimEnv.privileged_state`); this head reads the image tokens of the last
VLM layer's normalised input (what that layer's keys/values for the action expert are projected from),
flattened so each token keeps its place, and predicts the normalised poses. Its mean squared error,
times `TrainConfig.aux_env_state`, is added to the flow-matching loss, so vision, connector and VLM
layers learn to carry where things are to where the expert reads.

The head is training-only: it is saved in the checkpoint's training state (resume restores it) and never
in the policy, which stays a plain SmolVLA checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from smolvla.data.meta import DatasetMeta
from smolvla.data.stats import aggregate_stats
from smolvla.model.smolvla import SmolVLAModel
from smolvla.types import OBS_ENV_STATE

AUX_HEAD_FILE = "aux_env_state_head.safetensors"
# Object coordinates that never vary in the data (a slot the task lacks) have std 0: they are predicted
# as (x - mean) / STD_FLOOR = 0, a target the head learns at once, instead of dividing by zero.
STD_FLOOR = 1e-3


def env_state_stats(metas: Sequence[DatasetMeta]) -> tuple[Tensor, Tensor]:
    """(mean, std) float32[K] of "observation.environment_state" over the training datasets (count-weighted).

    Raises ValueError naming the dataset when one has no such feature, no statistics for it, or another width.
    """
    picked, width = [], None
    for meta in metas:
        feat = meta.features.get(OBS_ENV_STATE)
        if feat is None:
            raise ValueError(
                f"aux_env_state needs {OBS_ENV_STATE!r} in every dataset; {meta.root} has none "
                "(record it with `smolvla datagen so101`, or train with aux_env_state=0)"
            )
        stats = meta.stats.get(OBS_ENV_STATE, {})
        if not {"mean", "std", "count"} <= set(stats):
            raise ValueError(
                f"{meta.root}/meta/stats.json: {OBS_ENV_STATE!r} needs mean, std and count, found {sorted(stats)}"
            )
        if width is not None and list(feat["shape"]) != width:
            raise ValueError(f"{OBS_ENV_STATE} widths differ: {width} before, {list(feat['shape'])} in {meta.root}")
        width = list(feat["shape"])
        picked.append({OBS_ENV_STATE: stats})
    pooled = picked[0][OBS_ENV_STATE] if len(picked) == 1 else aggregate_stats(picked)[OBS_ENV_STATE]
    mean, std = (torch.as_tensor(np.asarray(pooled[s], dtype=np.float32)) for s in ("mean", "std"))
    return mean, std


class EnvStateHead(nn.Module):
    """Image tokens float[B, N * V, D] (flattened) -> MLP -> normalised environment state float32[B, K].

    Registers a forward hook on the last VLM layer's input norm that keeps its output while the head is in
    training mode; `loss(batch)` then reads it, so the model's own forward pass is unchanged.
    """

    def __init__(
        self, model: SmolVLAModel, n_views: int, mean: Tensor, std: Tensor, hidden: int = 256, seed: int = 0
    ) -> None:
        super().__init__()
        cfg = model.config
        if mean.ndim != 1 or mean.shape != std.shape:
            raise ValueError(f"env state mean/std must be float[K] alike, got {tuple(mean.shape)}, {tuple(std.shape)}")
        self.n_image_tokens = n_views * cfg.tokens_per_image
        # Initialised from its own seed inside a fork: turning the head on leaves the run's noise stream alone.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = nn.Sequential(
                nn.Linear(self.n_image_tokens * cfg.decoder.hidden, hidden), nn.GELU(), nn.Linear(hidden, mean.shape[0])
            )
        self.register_buffer("mean", mean.float(), persistent=False)
        self.register_buffer("std", std.float().clamp_min(STD_FLOOR), persistent=False)
        self._captured: Tensor | None = None
        self._hook = model.text.layers[-1].input_layernorm.register_forward_hook(self._capture)

    def _capture(self, _module: nn.Module, _args: tuple, out: Tensor) -> None:
        if self.training and torch.is_grad_enabled():
            self._captured = out  # float[B, P, D]: image tokens first (see SmolVLAModel's token layout)

    def loss(self, batch: dict) -> Tensor:
        """Mean squared error of the normalised prediction; call right after the model's training forward."""
        hidden, self._captured = self._captured, None
        if hidden is None:
            raise RuntimeError("EnvStateHead.loss: no training forward pass of the VLM since the last call")
        if OBS_ENV_STATE not in batch:
            raise ValueError(f"aux_env_state needs {OBS_ENV_STATE!r} in every batch; batch keys: {sorted(batch)}")
        target = torch.as_tensor(batch[OBS_ENV_STATE], dtype=torch.float32, device=hidden.device)
        b, k = hidden.shape[0], self.mean.shape[0]
        if target.shape != (b, k):
            raise ValueError(f"{OBS_ENV_STATE} must be float[{b}, {k}] (dataset width), got {tuple(target.shape)}")
        pred = self.net(hidden[:, : self.n_image_tokens].flatten(1).to(self.net[0].weight.dtype)).float()
        return (pred - (target - self.mean) / self.std).square().mean()

    def remove(self) -> None:
        self._hook.remove()

    def save(self, path: Path) -> None:
        save_file({k: v.contiguous() for k, v in self.net.state_dict().items()}, str(path))

    def load(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the checkpoint was not trained with aux_env_state > 0")
        self.net.load_state_dict(load_file(str(path)))
