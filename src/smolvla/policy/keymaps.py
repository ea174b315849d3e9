"""Strict weight I/O: safetensors reading with clear errors, prefix key maps, and shape-checked loading.

Our `SmolVLAModel` keeps Hugging Face parameter names under short prefixes, so every external layout maps
onto ours by prefix renames:

    LeRobot SmolVLA checkpoint                      HF SmolVLM2 backbone                ours
    model.vlm_with_expert.vlm.model.vision_model.  model.vision_model.               vision.
    model.vlm_with_expert.vlm.model.connector.     model.connector.                  connector.
    model.vlm_with_expert.vlm.model.text_model.    model.text_model.                 text.
    model.vlm_with_expert.lm_expert.               (none)                            expert.
    model.state_proj. / model.action_*.            (none)                            state_proj. / action_*.
    model.vlm_with_expert.vlm.lm_head.weight       lm_head.weight                    (dropped, shape-checked)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

LEROBOT_PREFIXES: tuple[tuple[str, str], ...] = (
    ("model.vlm_with_expert.vlm.model.vision_model.", "vision."),
    ("model.vlm_with_expert.vlm.model.connector.", "connector."),
    ("model.vlm_with_expert.vlm.model.text_model.", "text."),
    ("model.vlm_with_expert.lm_expert.", "expert."),
    ("model.state_proj.", "state_proj."),
    ("model.action_in_proj.", "action_in_proj."),
    ("model.action_out_proj.", "action_out_proj."),
    ("model.action_time_mlp_in.", "action_time_mlp_in."),
    ("model.action_time_mlp_out.", "action_time_mlp_out."),
)
LEROBOT_LM_HEAD = "model.vlm_with_expert.vlm.lm_head.weight"

HF_PREFIXES: tuple[tuple[str, str], ...] = (
    ("model.vision_model.", "vision."),
    ("model.connector.", "connector."),
    ("model.text_model.", "text."),
)
HF_LM_HEAD = "lm_head.weight"


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Load every tensor of a safetensors file on CPU; a missing or corrupt file raises naming the path."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"safetensors file not found: {path}")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"corrupt or unreadable safetensors file {path}: {e}") from e


def rename_prefixes(
    tensors: Mapping[str, torch.Tensor], prefixes: Sequence[tuple[str, str]], source: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Apply the first matching (old, new) prefix rename to each key; return (renamed, keys matching none).

    A final ("", "") pair keeps unmatched keys as they are. Two keys renamed onto one name is an error
    naming both (one of them would be silently lost).
    """
    out: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    unmatched: list[str] = []
    for key, value in tensors.items():
        for old, new in prefixes:
            if key.startswith(old):
                name = new + key[len(old) :]
                if name in out:
                    raise ValueError(f"{source}: {origin[name]!r} and {key!r} both map to {name!r}")
                out[name], origin[name] = value, key
                break
        else:
            unmatched.append(key)
    return out, unmatched


def check_shape(name: str, tensor: torch.Tensor, expected: tuple[int, ...], source: str) -> None:
    if tuple(tensor.shape) != tuple(expected):
        raise ValueError(f"{source}: {name} has shape {tuple(tensor.shape)}, expected {tuple(expected)}")


def strict_load(
    module: nn.Module,
    tensors: Mapping[str, torch.Tensor],
    source: str,
    *,
    only_prefixes: Sequence[str] | None = None,
) -> None:
    """Copy `tensors` into `module` after checking names and shapes exactly.

    only_prefixes: if given, only the module's parameters under these prefixes are expected (used when
        loading a backbone into a model whose expert stays freshly initialised).
    Raises ValueError listing missing keys, unexpected keys and shape mismatches (expected vs got).
    """
    own = module.state_dict()
    expected = {k: v for k, v in own.items() if only_prefixes is None or k.startswith(tuple(only_prefixes))}
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    mismatched = [
        f"{k}: expected {tuple(expected[k].shape)}, got {tuple(tensors[k].shape)}"
        for k in sorted(set(expected) & set(tensors))
        if tuple(expected[k].shape) != tuple(tensors[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {_clip(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {_clip(unexpected)}")
        if mismatched:
            parts.append(f"shape mismatches ({len(mismatched)}): {_clip(mismatched)}")
        raise ValueError(f"{source}: weights do not match the model; " + "; ".join(parts))
    with torch.no_grad():
        for key, value in tensors.items():
            own[key].copy_(value)


def _clip(items: list[str], n: int = 20) -> str:
    shown = ", ".join(items[:n])
    return shown + (f", ... ({len(items) - n} more)" if len(items) > n else "")
