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
from smolvla.model.config import get_config
from smolvla.policy.checkpoint import load_policy, load_policy_config
from smolvla.policy.config import PolicyConfig
from smolvla.policy.hf_backbone import load_backbone_config, policy_from_backbone
from smolvla.policy.lerobot import load_lerobot_policy, policy_config_from_lerobot
from smolvla.policy.policy import SmolVLAPolicy
from smolvla.policy.subword import train_task_tokenizer
from smolvla.policy.tokenizer import TaskTokenizer, build_byte_tokenizer
from smolvla.train.config import InitConfig
from smolvla.train.data import check_dataset_matches_policy, policy_inputs_from_meta, training_stats

logger = logging.getLogger(__name__)


def _policy_config_for(model_cfg, metas: Sequence[DatasetMeta]) -> PolicyConfig:
    cfg = PolicyConfig(model=model_cfg, n_action_steps=model_cfg.chunk_size, **policy_inputs_from_meta(metas[0]))
    for meta in metas:
        check_dataset_matches_policy(meta, cfg)
    return cfg


def _with_stats(policy: SmolVLAPolicy, metas: Sequence[DatasetMeta]) -> SmolVLAPolicy:
    """The same weights and tokenizer with the training data's normalisation stats."""
    stats = training_stats(metas, policy.config)
    return SmolVLAPolicy(policy.config, stats, policy.tokenizer, model=policy.model)


def _scratch(init: InitConfig, metas: Sequence[DatasetMeta], seed: int) -> SmolVLAPolicy:
    model_cfg = get_config(init.model_preset)
    if init.max_task_tokens is not None:
        model_cfg = replace(model_cfg, max_lang_tokens=init.max_task_tokens)
    cfg = _policy_config_for(model_cfg, metas)
    stats = training_stats(metas, cfg)
    # Without a pretrained vocabulary one is built locally (no download): a BPE learned from the datasets'
    # tasks, or one token per byte (257 ids).
    if init.tokenizer == "bpe":
        vocab = train_task_tokenizer([t for meta in metas for t in meta.tasks], cfg.model.decoder.vocab_size)
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


def _our_checkpoint(init: InitConfig, metas: Sequence[DatasetMeta]) -> SmolVLAPolicy:
    path = Path(str(init.path))
    config_file = path / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"init.path {path} is not a policy directory: {config_file} is missing")
    # Check the dataset against the stored config before reading any weights.
    cfg = load_policy_config(path)
    for meta in metas:
        check_dataset_matches_policy(meta, cfg)
    return _with_stats(load_policy(path), metas)


def _backbone(init: InitConfig, metas: Sequence[DatasetMeta], seed: int) -> SmolVLAPolicy:
    path = Path(str(init.path))
    base = get_config(init.model_preset)
    # The dataset is checked against the backbone's architecture before any weights are read.
    cfg = _policy_config_for(load_backbone_config(path, base.decoder.layers, base), metas)
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


def _lerobot(init: InitConfig, metas: Sequence[DatasetMeta]) -> SmolVLAPolicy:
    path = Path(str(init.path))
    cfg, _ = policy_config_from_lerobot(
        read_json(path / "config.json", "checkpoint file"), source=str(path / "config.json")
    )
    for meta in metas:
        check_dataset_matches_policy(meta, cfg)
    policy = load_lerobot_policy(path)
    return _with_stats(policy, metas)


def build_policy(init: InitConfig, metas: Sequence[DatasetMeta], seed: int) -> SmolVLAPolicy:
    """The starting policy for a run over datasets `metas` (dataset checks come before weights are built)."""
    builders = {
        "scratch": lambda: _scratch(init, metas, seed),
        "checkpoint": lambda: _our_checkpoint(init, metas),
        "backbone": lambda: _backbone(init, metas, seed),
        "lerobot": lambda: _lerobot(init, metas),
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


def resume_policy(pretrained_dir: Path, metas: Sequence[DatasetMeta], budget: int | None = None) -> SmolVLAPolicy:
    """The policy saved in a run's checkpoint (its stats are already the training data's), with a task-token
    budget of `budget` if given (see `with_task_budget`)."""
    policy = with_task_budget(load_policy(pretrained_dir), budget)
    for meta in metas:
        check_dataset_matches_policy(meta, policy.config)
    return policy
