"""Checks of a weights file against the model a config describes, before and after reading it.

`check_shapes` compares every tensor name and shape of a safetensors header with the model a config
implies, without allocating that model: it is built on the meta device with its initialisers skipped
(`model_skeleton`, milliseconds even at full size). A `config.json` enlarged by mistake (or on purpose)
then fails at once, naming the tensor and both shapes, instead of allocating gigabytes first.
`check_finite` refuses NaN/inf weights, which would make every predicted action NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch.overrides import TorchFunctionMode

from smolvla.model.config import ModelConfig
from smolvla.model.smolvla import SmolVLAModel
from smolvla.policy.keymaps import strict_load

# Non-finite tensors named in an error before the rest are only counted.
MAX_NAMED = 5


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """{name: shape} from a safetensors header (no tensor is read); raises ValueError naming a corrupt file."""
    if not path.is_file():
        raise FileNotFoundError(f"safetensors file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error type for a bad header
        raise ValueError(f"corrupt or unreadable safetensors file {path}: {e}") from e


class _SkipInit(TorchFunctionMode):
    """Makes the `torch.nn.init` initialisers no-ops. On the meta device there is nothing to fill, and the
    meta kernel of `normal_` would import torch._dynamo (a one-off ~2 s) for nothing."""

    def __torch_function__(self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if getattr(func, "__module__", None) == "torch.nn.init":
            return args[0] if args else kwargs["tensor"]
        return func(*args, **kwargs)


def model_skeleton(cfg: ModelConfig) -> SmolVLAModel:
    """The model `cfg` describes, on the meta device: every shape, no memory, no initialisation."""
    with torch.device("meta"), _SkipInit():
        return SmolVLAModel(cfg)


def check_shapes(cfg: ModelConfig, shapes: Mapping[str, Sequence[int]], source: str) -> None:
    """Raise ValueError unless `shapes` ({name: shape}, our key names) are exactly the model `cfg` implies.

    The message (`keymaps.strict_load`'s) lists missing and unexpected names and each mismatch as
    `name: expected (config), got (file)`, but nothing of the model's size is allocated.
    """
    # Each transformer layer holds at least one tensor: a layer count beyond the file's tensor count is
    # refused before even the skeleton is built (a huge count would take minutes on the meta device too).
    layers = cfg.vision.layers + 2 * cfg.decoder.layers  # vision, VLM text and expert layers
    if layers > len(shapes):
        raise ValueError(
            f"{source}: the config describes {layers} transformer layers (vision.layers={cfg.vision.layers}, "
            f"decoder.layers={cfg.decoder.layers}, twice with the expert) but the file holds {len(shapes)} tensors"
        )
    header = {name: torch.empty(tuple(shape), device="meta") for name, shape in shapes.items()}
    strict_load(model_skeleton(cfg), header, source)


def check_finite(tensors: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise ValueError naming the floating-point tensors of `tensors` that hold NaN or inf values."""
    bad = []
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad.append(f"{name} ({int((~torch.isfinite(tensor)).sum())} of {tensor.numel()} values)")
    if bad:
        more = f", ... ({len(bad) - MAX_NAMED} more)" if len(bad) > MAX_NAMED else ""
        raise ValueError(
            f"{source}: non-finite weights (NaN or inf) in {len(bad)} tensors: {', '.join(bad[:MAX_NAMED])}{more}; "
            "refusing to load them (every predicted action would be NaN)"
        )
