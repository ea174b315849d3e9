"""Our checkpoint directory: everything needed to run a policy offline, in four files.

    <dir>/config.json          PolicyConfig (JSON, includes the ModelConfig)
    <dir>/model.safetensors    SmolVLAModel.state_dict() (our key names, no lm_head)
    <dir>/stats.safetensors    flat normalisation stats: "observation.state.mean", "action.std", ...
    <dir>/tokenizer.json       the task tokenizer (absent when the policy has none)

Writes are atomic and durable (`atomic_dir`): files go into a temporary sibling directory, are fsynced,
and the directory is renamed into place, so a crash never leaves a half-written checkpoint under the final
name. Loading is strict and reads safetensors and JSON only: the config is type-checked with every
architecture field required (`configio`), the weights' names and shapes are checked against the
safetensors header before the model is allocated, and NaN/inf weights are refused.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from safetensors.torch import save_file

from smolvla.data.meta import read_json
from smolvla.model.config import ModelConfig
from smolvla.model.smolvla import SmolVLAModel
from smolvla.policy.atomic_dir import atomic_dir
from smolvla.policy.config import PolicyConfig
from smolvla.policy.keymaps import read_safetensors, strict_load
from smolvla.policy.normalize import NormStats
from smolvla.policy.policy import SmolVLAPolicy
from smolvla.policy.tokenizer import TaskTokenizer
from smolvla.policy.weight_checks import check_finite, check_shapes, model_skeleton, tensor_shapes

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
STATS_FILE = "stats.safetensors"
TOKENIZER_FILE = "tokenizer.json"


def save_policy(policy: SmolVLAPolicy, path: str | Path) -> Path:
    """Write `policy` to the directory `path` (replaced if it exists), atomically and durably (see
    `atomic_dir`: a kill mid-write leaves the previous checkpoint, and the next save removes the leftover)."""
    path = Path(path)
    with atomic_dir(path) as tmp:
        (tmp / CONFIG_FILE).write_text(policy.config.to_json())
        weights = {k: v.detach().to("cpu").contiguous() for k, v in policy.model.state_dict().items()}
        save_file(weights, str(tmp / WEIGHTS_FILE), metadata={"format": "pt", "producer": "smolvla"})
        save_file({k: v.contiguous() for k, v in policy.stats.to_flat().items()}, str(tmp / STATS_FILE))
        if policy.tokenizer is not None:
            (tmp / TOKENIZER_FILE).write_text(policy.tokenizer.to_json())
    logger.info("saved policy to %s", path)
    return path


def load_policy(
    path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> SmolVLAPolicy:
    """Load a directory written by `save_policy`. Raises on missing files, a bad config, bad keys or shapes
    (checked before the model is allocated) and non-finite weights."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"checkpoint directory not found: {path}")
    config = load_policy_config(path)
    weights_file = path / WEIGHTS_FILE
    check_shapes(config.model, tensor_shapes(weights_file), str(weights_file))
    stats = NormStats.from_flat(
        read_safetensors(path / STATS_FILE), config.feature_dims(), config.norm_modes(), source=str(path / STATS_FILE)
    )
    tok_path = path / TOKENIZER_FILE
    tokenizer = None
    if tok_path.is_file():
        tokenizer = TaskTokenizer.from_file(tok_path, config.max_lang_tokens, truncate=config.truncate_task)
    weights = read_safetensors(weights_file)
    check_finite(weights, str(weights_file))
    policy = SmolVLAPolicy(config, stats, tokenizer, model=uninitialised_model(config.model))
    strict_load(policy.model, weights, str(weights_file))
    return policy.to(device=device, dtype=dtype)


def load_policy_config(path: str | Path) -> PolicyConfig:
    """Only the config of a directory written by `save_policy` (no weights read); errors name the file."""
    config_file = Path(path) / CONFIG_FILE
    return PolicyConfig.from_dict(read_json(config_file, "checkpoint file"), source=str(config_file))


def uninitialised_model(cfg: ModelConfig) -> SmolVLAModel:
    """A model whose parameters are allocated but not initialised, for loaders that overwrite every one.

    Skips the default initialisers (seconds at full size): the skeleton is moved to uninitialised CPU
    memory. `strict_load` then fills every state-dict entry; a model with buffers is built normally, as
    buffers outside the state dict would stay garbage.
    """
    model = model_skeleton(cfg)
    if any(True for _ in model.buffers()):
        return SmolVLAModel(cfg)
    return model.to_empty(device="cpu")


def is_policy_dir(path: str | Path) -> bool:
    """True if `path` looks like our checkpoint (has config.json and stats.safetensors)."""
    path = Path(path)
    return (path / CONFIG_FILE).is_file() and (path / STATS_FILE).is_file()
