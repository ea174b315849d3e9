"""Which parameters train: LeRobot's `train_expert_only` / `freeze_vision_encoder` semantics.

Names follow the model's state-dict layout (`vision.*`, `connector.*`, `text.*`, `expert.*`, and the
projections `state_proj`, `action_in_proj`, `action_out_proj`, `action_time_mlp_in/out`):

    mode            vision  connector  text decoder          expert + projections
    expert_only     frozen  frozen     frozen                train
    vision_frozen   frozen  train      train (but see below)  train
    full            train   train      train (but see below)  train

When the text decoder trains, its final norm and its last layer are frozen as LeRobot does: the prefix
output of the last layer is never read (the expert only consumes its keys/values, and the final norm
feeds nothing), so those weights get no (or only partial) gradient, which DistributedDataParallel
rejects as unused parameters.
"""

from __future__ import annotations

import logging

from torch import nn

from smolvla.train.config import FreezeMode

logger = logging.getLogger(__name__)

VLM_PREFIXES = ("vision.", "connector.", "text.")
FREEZE_MODES = ("expert_only", "vision_frozen", "full")


def frozen_prefixes(mode: FreezeMode, num_text_layers: int) -> tuple[str, ...]:
    """State-dict name prefixes whose parameters do not train under `mode`."""
    if mode not in FREEZE_MODES:
        raise ValueError(f"unknown freeze mode {mode!r}; expected one of {list(FREEZE_MODES)}")
    if mode == "expert_only":
        return VLM_PREFIXES
    unused = ("text.norm.", f"text.layers.{num_text_layers - 1}.")
    return (("vision.",) if mode == "vision_frozen" else ()) + unused


def apply_freeze(model: nn.Module, mode: FreezeMode, num_text_layers: int) -> list[str]:
    """Set `requires_grad` on every parameter of `model` (a SmolVLAModel) by `mode`; returns trainable names.

    Raises ValueError if the model does not have the expected parameter layout (a prefix matching
    nothing means the freeze would silently do nothing).
    """
    prefixes = frozen_prefixes(mode, num_text_layers)
    names = [n for n, _ in model.named_parameters()]
    for prefix in prefixes:
        if not any(n.startswith(prefix) for n in names):
            raise ValueError(f"freeze mode {mode!r}: no parameter named {prefix}* in the model (got {names[:5]}...)")
    trainable = []
    for name, param in model.named_parameters():
        param.requires_grad_(not name.startswith(prefixes))
        if param.requires_grad:
            trainable.append(name)
    if not trainable:
        raise ValueError(f"freeze mode {mode!r} leaves no trainable parameter")
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_all = sum(p.numel() for p in model.parameters())
    logger.info("freeze=%s: training %d of %d parameters (%.1f%%)", mode, n_train, n_all, 100 * n_train / n_all)
    return trainable
