"""Offline builders of tiny policies and fake batches, for tests, demos and smoke runs of other areas.

Everything here is built locally: random weights from `get_config("tiny")`, the byte-level tokenizer of
`tokenizer.build_byte_tokenizer`, and random normalisation stats. Deterministic for a given seed.
"""

from __future__ import annotations

from pathlib import Path

import torch

from smolvla.model.config import ModelConfig, get_config
from smolvla.policy.config import PolicyConfig
from smolvla.policy.normalize import NormStats
from smolvla.policy.policy import SmolVLAPolicy
from smolvla.policy.tokenizer import TaskTokenizer, build_byte_tokenizer
from smolvla.types import ACTION, ACTION_IS_PAD, OBS_STATE, TASK


def make_tiny_policy(
    camera_keys: tuple[str, ...] = ("observation.images.top",),
    state_dim: int = 6,
    action_dim: int = 6,
    seed: int = 0,
    *,
    n_action_steps: int | None = None,
    empty_cameras: int = 0,
    model: ModelConfig | None = None,
) -> SmolVLAPolicy:
    """A random-weight SmolVLA policy at the "tiny" size (CPU, float32), with byte tokenizer and stats.

    n_action_steps defaults to the chunk size; `model` overrides the architecture (default: tiny with a
    48-token language budget, so ordinary task strings fit the byte-level tokenizer's one token per byte).
    """
    model = model or get_config("tiny", max_lang_tokens=48)
    config = PolicyConfig(
        model=model,
        camera_keys=tuple(camera_keys),
        empty_cameras=empty_cameras,
        state_dim=state_dim,
        action_dim=action_dim,
        n_action_steps=n_action_steps or model.chunk_size,
    )
    gen = torch.Generator().manual_seed(seed)
    stats = NormStats(
        {
            OBS_STATE: {
                "mean": torch.randn(state_dim, generator=gen),
                "std": torch.rand(state_dim, generator=gen) + 0.5,
            },
            ACTION: {
                "mean": torch.randn(action_dim, generator=gen),
                "std": torch.rand(action_dim, generator=gen) + 0.5,
            },
        }
    )
    tokenizer = TaskTokenizer(build_byte_tokenizer(), model.max_lang_tokens, truncate=config.truncate_task)
    # Module initialisers draw from the global generator: seed it inside a fork so callers' RNG is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SmolVLAPolicy(config, stats, tokenizer).eval()


def make_fake_batch(
    config: PolicyConfig,
    batch_size: int = 2,
    seed: int = 0,
    *,
    image_hw: tuple[int, int] = (48, 64),
    with_actions: bool = False,
    task: str = "pick up the cube",
) -> dict:
    """A random batch in raw units for `config`: images in [0, 1] of size `image_hw`, state, task strings;
    with_actions adds "action" float32[B, chunk, action_dim] and an all-False "action_is_pad"."""
    gen = torch.Generator().manual_seed(seed)
    batch: dict = {k: torch.rand(batch_size, 3, *image_hw, generator=gen) for k in config.camera_keys}
    batch[OBS_STATE] = torch.randn(batch_size, config.state_dim, generator=gen)
    batch[TASK] = [task] * batch_size
    if with_actions:
        batch[ACTION] = torch.randn(batch_size, config.chunk_size, config.action_dim, generator=gen)
        batch[ACTION_IS_PAD] = torch.zeros(batch_size, config.chunk_size, dtype=torch.bool)
    return batch


# A SmolVLM2-format backbone at the "tiny" size: 8 text layers on disk, of which get_config("tiny") keeps 4.
TINY_SMOLVLM_CONFIG = {
    "vision_config": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": 64,
        "patch_size": 8,
    },
    "text_config": {
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 8,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "vocab_size": 512,
        "rms_norm_eps": 1e-5,
        "rope_theta": 100000.0,
    },
    "scale_factor": 2,
}


def write_tiny_backbone(path: Path, seed: int = 0) -> Path:
    """Write a tiny HF SmolVLM2 backbone dir (config.json, model.safetensors, tokenizer.json) at `path`.

    Built locally with `transformers` (a test-only dependency, imported here lazily), random weights.
    """
    import transformers

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.SmolVLMForConditionalGeneration(transformers.SmolVLMConfig(**TINY_SMOLVLM_CONFIG))
    model.save_pretrained(path)
    (Path(path) / "tokenizer.json").write_text(build_byte_tokenizer().to_str())
    return Path(path)
