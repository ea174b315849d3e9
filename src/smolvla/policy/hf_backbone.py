"""Read a Hugging Face SmolVLM2 backbone from a local directory, with no download.

A backbone dir holds `config.json` (SmolVLMConfig: `vision_config`, `text_config`, `scale_factor`),
`model.safetensors` (keys `model.vision_model...`, `model.connector.modality_projection.proj.weight`,
`model.text_model...`, `lm_head.weight`) and `tokenizer.json`. SmolVLA keeps only the first N text layers:
the others must be present and well-shaped (so a truncated or foreign file is caught) and are then dropped.

`KNOWN_BACKBONES` resolves published backbone names to our presets, so a LeRobot checkpoint naming
"HuggingFaceTB/SmolVLM2-500M-Video-Instruct" loads without its config.json being fetched.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from smolvla.data.meta import read_json
from smolvla.model.config import ConnectorConfig, DecoderConfig, ModelConfig, VisionConfig, get_config
from smolvla.policy.config import PolicyConfig
from smolvla.policy.keymaps import HF_LM_HEAD, HF_PREFIXES, check_shape, read_safetensors, rename_prefixes, strict_load
from smolvla.policy.normalize import NormStats
from smolvla.policy.policy import SmolVLAPolicy
from smolvla.policy.tokenizer import TaskTokenizer

# Published backbone name -> our preset with the same architecture (all 32 text layers listed as total).
KNOWN_BACKBONES: dict[str, str] = {"HuggingFaceTB/SmolVLM2-500M-Video-Instruct": "smolvla_base"}

# Defaults of transformers' SmolVLMVisionConfig / LlamaConfig, used only for fields a config.json omits.
_VISION_DEFAULTS = {"hidden_size": 1152, "intermediate_size": 3072, "num_hidden_layers": 12}
_VISION_DEFAULTS |= {"num_attention_heads": 16, "image_size": 224, "patch_size": 32, "layer_norm_eps": 1e-6}
_TEXT_REQUIRED = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size")


def model_config_from_hf(hf: dict[str, Any], num_vlm_layers: int, base: ModelConfig | None = None) -> ModelConfig:
    """SmolVLMConfig dict -> our ModelConfig keeping the first `num_vlm_layers` text layers.

    Fields outside the backbone (expert, chunk size, token budget, ...) come from `base` (default: the
    `smolvla_base` preset).
    """
    base = base or get_config("smolvla_base")
    v = {**_VISION_DEFAULTS, **hf.get("vision_config", {})}
    t = hf.get("text_config")
    if t is None:
        raise ValueError("backbone config.json has no 'text_config'")
    missing = [k for k in _TEXT_REQUIRED if k not in t]
    if missing:
        raise ValueError(f"backbone text_config lacks {missing}")
    if v.get("hidden_act", "gelu_pytorch_tanh") != "gelu_pytorch_tanh" or t.get("hidden_act", "silu") != "silu":
        raise ValueError(
            f"unsupported activations: vision {v.get('hidden_act')!r} (want gelu_pytorch_tanh), "
            f"text {t.get('hidden_act')!r} (want silu)"
        )
    # The backbone's rope_theta is not kept: SmolVLA's joint layers use `ModelConfig.rope_wavelength`.
    rope = t.get("rope_parameters") or {}
    if rope.get("rope_type", "default") != "default" or t.get("rope_scaling"):
        raise ValueError(f"unsupported RoPE scaling in backbone config: {rope or t.get('rope_scaling')}")
    heads = t["num_attention_heads"]
    decoder = DecoderConfig(
        hidden=t["hidden_size"],
        layers=num_vlm_layers,
        total_layers=t["num_hidden_layers"],
        heads=heads,
        kv_heads=t.get("num_key_value_heads", heads),
        head_dim=t.get("head_dim") or t["hidden_size"] // heads,
        mlp=t["intermediate_size"],
        rms_norm_eps=t.get("rms_norm_eps", 1e-6),
        vocab_size=t["vocab_size"],
    )
    vision = VisionConfig(
        hidden=v["hidden_size"],
        layers=v["num_hidden_layers"],
        heads=v["num_attention_heads"],
        mlp=v["intermediate_size"],
        image_size=v["image_size"],
        patch_size=v["patch_size"],
        layer_norm_eps=v["layer_norm_eps"],
    )
    return replace(
        base, vision=vision, connector=ConnectorConfig(scale_factor=hf.get("scale_factor", 2)), decoder=decoder
    )


def known_backbone_config(name: str, num_vlm_layers: int) -> ModelConfig | None:
    """Our preset for a published backbone name (no download), or None if the name is not in the table."""
    if name not in KNOWN_BACKBONES:
        return None
    cfg = get_config(KNOWN_BACKBONES[name])
    return replace(cfg, decoder=replace(cfg.decoder, layers=num_vlm_layers))


_TEXT_LAYER = re.compile(r"^text\.layers\.(\d+)\.")


def backbone_state_dict(path: str | Path, cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """Backbone weights in our naming (`vision.*`, `connector.*`, `text.*`), first `cfg.decoder.layers` kept.

    Checks that every text layer up to `cfg.decoder.total_layers` is present (the dropped ones included)
    and that lm_head has shape [vocab, hidden]; unknown keys are an error. Shapes of the kept tensors are
    checked when they are loaded into a model (`keymaps.strict_load`).
    """
    path = Path(path)
    source = str(path / "model.safetensors")
    raw = read_safetensors(path / "model.safetensors")
    lm_head = raw.pop(HF_LM_HEAD, None)
    if lm_head is None:
        raise ValueError(f"{source}: missing {HF_LM_HEAD}")
    check_shape(HF_LM_HEAD, lm_head, (cfg.decoder.vocab_size, cfg.decoder.hidden), source)
    ours, unmatched = rename_prefixes(raw, HF_PREFIXES, source)
    if unmatched:
        raise ValueError(f"{source}: unexpected keys {sorted(unmatched)[:20]}")
    present = {int(m.group(1)) for k in ours if (m := _TEXT_LAYER.match(k))}
    expected = set(range(cfg.decoder.total_layers))
    if present != expected:
        raise ValueError(
            f"{source}: text layers present {sorted(present)}, expected 0..{cfg.decoder.total_layers - 1} "
            f"(missing {sorted(expected - present)}, unexpected {sorted(present - expected)})"
        )
    layer0 = {k.split(".", 3)[3]: v.shape for k, v in ours.items() if k.startswith("text.layers.0.")}
    kept: dict[str, torch.Tensor] = {}
    for key, value in ours.items():
        m = _TEXT_LAYER.match(key)
        if m and int(m.group(1)) >= cfg.decoder.layers:
            # Dropped layer: same tensor names and shapes as layer 0, or the file is not what it claims.
            sub = key.split(".", 3)[3]
            if sub not in layer0 or value.shape != layer0[sub]:
                raise ValueError(f"{source}: dropped layer tensor {key} has unexpected name or shape {value.shape}")
            continue
        kept[key] = value
    return kept


def load_backbone_config(path: str | Path, num_vlm_layers: int, base: ModelConfig | None = None) -> ModelConfig:
    config_file = Path(path) / "config.json"
    hf = read_json(config_file, "backbone file")
    if not isinstance(hf, dict):
        raise ValueError(f"{config_file}: expected a JSON object (SmolVLMConfig), got {type(hf).__name__}")
    return model_config_from_hf(hf, num_vlm_layers, base)


def load_backbone_weights(model: nn.Module, path: str | Path, cfg: ModelConfig) -> None:
    """Fill the vision tower, connector and text decoder of `model` (a SmolVLAModel) from a backbone dir.

    The expert and the projections keep their current values (a fresh expert is trained on top). Every
    backbone tensor of the model must be in the file with the same shape, and vice versa.
    """
    tensors = backbone_state_dict(path, cfg)
    strict_load(model, tensors, str(Path(path) / "model.safetensors"), only_prefixes=("vision.", "connector.", "text."))


def policy_from_backbone(
    path: str | Path,
    *,
    camera_keys: tuple[str, ...],
    state_dim: int,
    action_dim: int,
    stats: NormStats,
    num_vlm_layers: int = 16,
    n_action_steps: int | None = None,
    base: ModelConfig | None = None,
    seed: int = 0,
) -> SmolVLAPolicy:
    """A new policy for training: backbone weights and tokenizer from the local dir, a fresh expert.

    base: supplies the non-backbone fields (expert, chunk size, token budget; default `smolvla_base`).
    seed: seeds the initialisation of the expert and projections (the global RNG is left untouched).
    """
    path = Path(path)
    model_cfg = load_backbone_config(path, num_vlm_layers, base)
    config = PolicyConfig(
        model=model_cfg,
        camera_keys=tuple(camera_keys),
        state_dim=state_dim,
        action_dim=action_dim,
        n_action_steps=n_action_steps or model_cfg.chunk_size,
    )
    if not (path / "tokenizer.json").is_file():
        raise FileNotFoundError(f"backbone directory {path} has no tokenizer.json")
    tokenizer = TaskTokenizer.from_file(path, model_cfg.max_lang_tokens, truncate=config.truncate_task)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        policy = SmolVLAPolicy(config, stats, tokenizer)
    load_backbone_weights(policy.model, path, model_cfg)
    return policy
