"""Summarise a checkpoint directory (ours or LeRobot's) without building the model.

Reads config JSON and safetensors headers only, so inspecting a full-size checkpoint takes milliseconds
and no memory for weights.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from safetensors import safe_open

from smolvla.data.paths import confine
from smolvla.policy.checkpoint import CONFIG_FILE, STATS_FILE, WEIGHTS_FILE, is_policy_dir
from smolvla.policy.config import PolicyConfig
from smolvla.policy.hf_backbone import read_json
from smolvla.policy.lerobot import NORM_MODULES, POST_FILE, PRE_FILE, policy_config_from_lerobot


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """{name: shape} from a safetensors header; raises ValueError naming a corrupt file."""
    if not path.is_file():
        raise FileNotFoundError(f"safetensors file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error type for a bad header
        raise ValueError(f"corrupt or unreadable safetensors file {path}: {e}") from e


def inspect_checkpoint(path: str | Path) -> dict[str, Any]:
    """-> {"format", "config" (PolicyConfig dict), "parameters", "tensors", "stats_keys"}."""
    path = Path(path)
    if is_policy_dir(path):
        config = PolicyConfig.from_dict(read_json(path / CONFIG_FILE))
        shapes = tensor_shapes(path / WEIGHTS_FILE)
        stats = sorted(tensor_shapes(path / STATS_FILE))
        fmt = "smolvla"
    elif (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file():
        config, _ = policy_config_from_lerobot(read_json(path / CONFIG_FILE), source=str(path / CONFIG_FILE))
        all_shapes = tensor_shapes(path / WEIGHTS_FILE)
        shapes = {k: v for k, v in all_shapes.items() if not k.startswith(NORM_MODULES)}
        stats = sorted(set(all_shapes) - set(shapes))
        for name in (PRE_FILE, POST_FILE):
            if (path / name).is_file():
                for step in read_json(path / name).get("steps", []):
                    if "state_file" in step:
                        state_file = confine(path, step["state_file"], f"{path / name} state_file")
                        stats += [f"{step['state_file']}: {k}" for k in sorted(tensor_shapes(state_file))]
        fmt = "lerobot"
    else:
        raise FileNotFoundError(f"{path} is not a checkpoint directory (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    return {
        "format": fmt,
        "config": config.to_dict(),
        "parameters": sum(math.prod(s) for s in shapes.values()),
        "tensors": len(shapes),
        "stats_keys": stats,
    }
