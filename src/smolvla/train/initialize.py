"""Build the policy a run starts from (scratch, our checkpoint, a LeRobot checkpoint, an HF backbone).

Every source ends the same way: a `SmolVLAPolicy` whose config matches the dataset (checked before
weights are read where possible) and whose normalisation stats are the training data's, as LeRobot does
when it finetunes (a pretrained checkpoint's stats describe another robot's data).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

from smolvla.data.meta import DatasetMeta, read_json
from smolvla.data.mixture import MixtureConfig, view_order
from smolvla.model.config import get_config
from smolvla.policy.checkpoint import load_policy, load_policy_config
from smolvla.policy.config import PolicyConfig
from smolvla.policy.hf_backbone import load_backbone_config, policy_from_backbone
from smolvla.policy.lerobot import load_lerobot_policy, policy_config_from_lerobot
from smolvla.policy.policy import SmolVLAPolicy
from smolvla.policy.subword import train_task_tokenizer
from smolvla.policy.tokenizer import TaskTokenizer, build_byte_tokenizer
from smolvla.train.config import InitConfig
from smolvla.train.data import (
    check_dataset_matches_policy,
    check_mixture,
    is_mixture_layout,
    mixture_policy_inputs,
    policy_inputs_from_meta,
    training_stats,
    training_tasks,
)

logger = logging.getLogger(__name__)


def _policy_config_for(
    model_cfg, metas: Sequence[DatasetMeta], mixture: MixtureConfig | None = None, *, by_view: bool = False
) -> PolicyConfig:
    """The policy layout the data implies: the standard mixture layout, or the datasets' own (cameras in
    info.json order, or in standard-view order when `by_view`: see `view_order`)."""
    if mixture is not None:
        check_mixture(mixture, metas, model_cfg)
        return PolicyConfig(model=model_cfg, n_action_steps=model_cfg.chunk_size, **mixture_policy_inputs(model_cfg))
    inputs = policy_inputs_from_meta(metas[0])
    if by_view:
        inputs["camera_keys"] = view_order(inputs["camera_keys"])
    cfg = PolicyConfig(model=model_cfg, n_action_steps=model_cfg.chunk_size, **inputs)
    for meta in metas:
        check_dataset_matches_policy(meta, cfg)
    return cfg


def _with_stats(policy: SmolVLAPolicy, metas: Sequence[DatasetMeta]) -> SmolVLAPolicy:
    """The same weights and tokenizer with the training data's normalisation stats."""
    stats = training_stats(metas, policy.config)
    return SmolVLAPolicy(policy.config, stats, policy.tokenizer, model=policy.model)


def _relayout(policy: SmolVLAPolicy, metas: Sequence[DatasetMeta], mixture: MixtureConfig | None) -> SmolVLAPolicy:
    """The same weights and tokenizer in the layout of the training data (cameras, sizes, normalisation).

    What lets a mixture-trained checkpoint be fine-tuned on one dataset (and a one-dataset checkpoint join a
    mixture): no weight depends on the layout - state and action enter and leave through the model's 32
    padded slots, every camera goes through the same vision encoder, and a masked camera slot takes no token
    position - so only the config and the statistics change."""
    cfg = _policy_config_for(policy.config.model, metas, mixture, by_view=True)
    return SmolVLAPolicy(cfg, training_stats(metas, cfg), policy.tokenizer, model=policy.model)


def _scratch(init: InitConfig, metas: Sequence[DatasetMeta], seed: int, mixture: MixtureConfig | None) -> SmolVLAPolicy:
    model_cfg = get_config(init.model_preset)
    if init.max_task_tokens is not None:
        model_cfg = replace(model_cfg, max_lang_tokens=init.max_task_tokens)
    cfg = _policy_config_for(model_cfg, metas, mixture)
    stats = training_stats(metas, cfg)
    # Without a pretrained vocabulary one is built locally (no download): a BPE learned from the datasets'
    # tasks, or one token per byte (257 ids).
    if init.tokenizer == "bpe":
        tasks = [t for per_dataset in training_tasks(metas, mixture) for t in per_dataset]
        vocab = train_task_tokenizer(tasks, cfg.model.decoder.vocab_size)
    else:
        vocab = build_byte_tokenizer()
    tokenizer = TaskTokenizer(vocab, cfg.max_lang_tokens, truncate=cfg.truncate_task)
    if tokenizer.vocab_size > cfg.model.decoder.vocab_size:
        raise ValueError(
            f"model preset {init.model_preset!r} has vocab_size {cfg.model.decoder.vocab_size}, smaller than the "
            f"{init.tokenizer} tokenizer's {tokenizer.vocab_size} ids"
        )
    torch.manual_seed(seed)  # the random initial weights are part of the run's determinism
    return SmolVLAPolicy(cfg, stats, tokenizer)


def with_task_budget(policy: SmolVLAPolicy, budget: int | None) -> SmolVLAPolicy:
    """`policy` with a task-token budget of `budget` (None: as it is), same weights, stats and vocabulary.

    The budget shapes no weight: it is the length task tokens are padded to (positions are rotary), which
    the model only checks inputs against.
    """
    if budget is None or budget == policy.config.max_lang_tokens:
        return policy
    model_cfg = replace(policy.config.model, max_lang_tokens=budget)
    policy.model.config = model_cfg
    tok = policy.tokenizer
    tokenizer = None if tok is None else TaskTokenizer(tok.tokenizer, budget, truncate=tok.truncate)
    return SmolVLAPolicy(replace(policy.config, model=model_cfg), policy.stats, tokenizer, model=policy.model)


def _our_checkpoint(init: InitConfig, metas: Sequence[DatasetMeta], mixture: MixtureConfig | None) -> SmolVLAPolicy:
    path = Path(str(init.path))
    config_file = path / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"init.path {path} is not a policy directory: {config_file} is missing")
    # Check the dataset against the stored config before reading any weights.
    cfg = load_policy_config(path)
    if mixture is not None or is_mixture_layout(cfg):
        # Mixture data, or a mixture-trained checkpoint: the policy takes the data's layout (`_relayout`).
        _policy_config_for(cfg.model, metas, mixture, by_view=True)
        return _relayout(load_policy(path), metas, mixture)
    for meta in metas:
        check_dataset_matches_policy(meta, cfg)
    return _with_stats(load_policy(path), metas)


def _backbone(
    init: InitConfig, metas: Sequence[DatasetMeta], seed: int, mixture: MixtureConfig | None
) -> SmolVLAPolicy:
    path = Path(str(init.path))
    base = get_config(init.model_preset)
    # The dataset is checked against the backbone's architecture before any weights are read.
    cfg = _policy_config_for(load_backbone_config(path, base.decoder.layers, base), metas, mixture)
    return policy_from_backbone(
        path,
        camera_keys=cfg.camera_keys,
        state_dim=cfg.state_dim,
        action_dim=cfg.action_dim,
        stats=training_stats(metas, cfg),
        num_vlm_layers=base.decoder.layers,
        base=base,
        seed=seed,
    )


def _lerobot(init: InitConfig, metas: Sequence[DatasetMeta], mixture: MixtureConfig | None) -> SmolVLAPolicy:
    path = Path(str(init.path))
    cfg, _ = policy_config_from_lerobot(
        read_json(path / "config.json", "checkpoint file"), source=str(path / "config.json")
    )
    if mixture is not None:
        _policy_config_for(cfg.model, metas, mixture)
        return _relayout(load_lerobot_policy(path), metas, mixture)
    for meta in metas:
        check_dataset_matches_policy(meta, cfg)
    policy = load_lerobot_policy(path)
    return _with_stats(policy, metas)


def build_policy(
    init: InitConfig, metas: Sequence[DatasetMeta], seed: int, mixture: MixtureConfig | None = None
) -> SmolVLAPolicy:
    """The starting policy for a run over datasets `metas` (dataset checks come before weights are built);
    `mixture`: the datasets form that mixture (`metas` in its order), the policy gets the standard layout."""
    builders = {
        "scratch": lambda: _scratch(init, metas, seed, mixture),
        "checkpoint": lambda: _our_checkpoint(init, metas, mixture),
        "backbone": lambda: _backbone(init, metas, seed, mixture),
        "lerobot": lambda: _lerobot(init, metas, mixture),
    }
    if init.kind not in builders:
        raise ValueError(f"unknown init kind {init.kind!r}; expected one of {sorted(builders)}")
    policy = with_task_budget(builders[init.kind](), init.max_task_tokens)
    if policy.tokenizer is None:
        # Datasets give task strings; without a tokenizer the first batch would fail after loading everything.
        raise ValueError(
            f"the policy from {init.kind} {init.path!r} has no tokenizer, so it cannot encode the datasets' task "
            "strings; put the backbone's tokenizer.json beside the checkpoint (or in its local vlm_model_name dir)"
        )
    return policy


def resume_policy(
    pretrained_dir: Path, metas: Sequence[DatasetMeta], budget: int | None = None, mixture: MixtureConfig | None = None
) -> SmolVLAPolicy:
    """The policy saved in a run's checkpoint (its stats are already the training data's), with a task-token
    budget of `budget` if given (see `with_task_budget`)."""
    policy = with_task_budget(load_policy(pretrained_dir), budget)
    if mixture is not None:
        check_mixture(mixture, metas, policy.config.model)
        if not is_mixture_layout(policy.config):
            raise ValueError(f"cannot resume {pretrained_dir} on a mixture: it was not trained on one")
        return policy
    for meta in metas:
        check_dataset_matches_policy(meta, policy.config)
    return policy
