"""Summarise a checkpoint directory (ours or LeRobot's) without building the model.

Reads config JSON and safetensors headers only, so inspecting a full-size checkpoint takes milliseconds
and no memory for weights. Our checkpoints are checked as loading would check them (config keys and
types, every weight's name and shape against the config), so a summary is never of a config the weights
contradict.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from smolvla.data.meta import read_json
from smolvla.data.paths import confine
from smolvla.policy.checkpoint import CONFIG_FILE, STATS_FILE, WEIGHTS_FILE, is_policy_dir, load_policy_config
from smolvla.policy.lerobot import NORM_MODULES, POST_FILE, PRE_FILE, policy_config_from_lerobot, processor_steps
from smolvla.policy.weight_checks import check_shapes, tensor_shapes


def inspect_checkpoint(path: str | Path) -> dict[str, Any]:
    """-> {"format", "config" (PolicyConfig dict), "parameters", "tensors", "stats_keys"}."""
    path = Path(path)
    if is_policy_dir(path):
        config = load_policy_config(path)
        shapes = tensor_shapes(path / WEIGHTS_FILE)
        check_shapes(config.model, shapes, str(path / WEIGHTS_FILE))
        stats = sorted(tensor_shapes(path / STATS_FILE))
        fmt = "smolvla"
    elif (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file():
        config, _ = policy_config_from_lerobot(
            read_json(path / CONFIG_FILE, "checkpoint file"), source=str(path / CONFIG_FILE)
        )
        all_shapes = tensor_shapes(path / WEIGHTS_FILE)
        shapes = {k: v for k, v in all_shapes.items() if not k.startswith(NORM_MODULES)}
        stats = sorted(set(all_shapes) - set(shapes))
        for name in (PRE_FILE, POST_FILE):
            if (path / name).is_file():
                for step in processor_steps(path / name):
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
