"""Import a LeRobot SmolVLA checkpoint directory strictly and offline.

A LeRobot checkpoint dir holds:
    config.json                 SmolVLAConfig fields (chunk_size, vlm_model_name, input_features, ...)
    model.safetensors           weights under `model.vlm_with_expert...` / `model.<projection>` (see keymaps)
    policy_preprocessor.json    processing steps; the "normalizer_processor" step names its `state_file`
    policy_postprocessor.json   the "unnormalizer_processor" step, likewise
    <state files>.safetensors   flat stats: "observation.state.mean", "action.std", ...
Checkpoints older than lerobot 0.4 have no processor files: their stats are `normalize_inputs.buffer_*`,
`normalize_targets.buffer_*` and `unnormalize_outputs.buffer_*` tensors inside model.safetensors.

Unlike LeRobot, which silently ignores stats it cannot match (and then emits un-normalised actions), any
stats key we cannot place is an error naming it; `stats_rename` maps prefixes explicitly when the user
knows what a dataset-prefixed key (e.g. `so100.buffer.action.mean`) means.

The backbone architecture comes from `vlm_model_name`: a local SmolVLM2 dir (its config.json, and its
tokenizer.json if present) or a name in `hf_backbone.KNOWN_BACKBONES`. Nothing is ever downloaded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from smolvla.data.meta import read_json
from smolvla.data.paths import confine
from smolvla.model.config import ExpertConfig, ModelConfig
from smolvla.policy.checkpoint import uninitialised_model
from smolvla.policy.config import PolicyConfig
from smolvla.policy.hf_backbone import KNOWN_BACKBONES, known_backbone_config, load_backbone_config
from smolvla.policy.keymaps import (
    LEROBOT_LM_HEAD,
    LEROBOT_PREFIXES,
    check_shape,
    read_safetensors,
    rename_prefixes,
    strict_load,
)
from smolvla.policy.normalize import NormStats
from smolvla.policy.policy import SmolVLAPolicy
from smolvla.policy.tokenizer import TaskTokenizer
from smolvla.policy.weight_checks import check_finite, check_shapes
from smolvla.types import ACTION, OBS_IMAGES_PREFIX, OBS_STATE

logger = logging.getLogger(__name__)

# SmolVLAConfig defaults (lerobot configuration_smolvla.py), used for fields a config.json omits.
LEROBOT_DEFAULTS: dict[str, Any] = {
    "n_obs_steps": 1,
    "chunk_size": 50,
    "n_action_steps": 50,
    "max_state_dim": 32,
    "max_action_dim": 32,
    "resize_imgs_with_padding": [512, 512],
    "empty_cameras": 0,
    "adapt_to_pi_aloha": False,
    "use_delta_joint_actions_aloha": False,
    "tokenizer_max_length": 48,
    "num_steps": 10,
    "vlm_model_name": "HuggingFaceTB/SmolVLM2-500M-Video-Instruct",
    "add_image_special_tokens": False,
    "attention_mode": "cross_attn",
    "prefix_length": -1,
    "num_expert_layers": -1,
    "num_vlm_layers": 16,
    "self_attn_every_n_layers": 2,
    "expert_width_multiplier": 0.75,
    "min_period": 4e-3,
    "max_period": 4.0,
    "normalization_mapping": {"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"},
}
# Options that change behaviour and which we do not implement: (field, the only supported value).
_UNSUPPORTED = (
    ("n_obs_steps", 1),
    ("adapt_to_pi_aloha", False),
    ("use_delta_joint_actions_aloha", False),
    ("add_image_special_tokens", False),
    ("attention_mode", "cross_attn"),
)
_MODES = {"MEAN_STD": "mean_std", "IDENTITY": "identity"}
NORM_MODULES = ("normalize_inputs.", "normalize_targets.", "unnormalize_outputs.")
PRE_FILE, POST_FILE = "policy_preprocessor.json", "policy_postprocessor.json"
COMPILED_PREFIX = "model._orig_mod."


def is_lerobot_checkpoint(path: str | Path) -> bool:
    """True if `path/config.json` is a LeRobot policy config: it names the policy `type` (ours has no such key)."""
    try:
        raw = json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError):
        return False  # missing or unreadable: the loader of our own format reports it
    return isinstance(raw, dict) and "type" in raw


def load_lerobot_policy(
    path: str | Path,
    *,
    tokenizer_path: str | Path | None = None,
    stats_rename: Mapping[str, str] | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> SmolVLAPolicy:
    """Build a `SmolVLAPolicy` from a LeRobot SmolVLA checkpoint directory.

    tokenizer_path: tokenizer.json (or a dir holding it); default: the one in the checkpoint dir, else in
        the local backbone dir, if any. Without one the policy accepts only pre-tokenised batches.
    stats_rename: {old_prefix: new_prefix} applied to stats keys before strict matching, e.g.
        {"so100.buffer.": ""} for a checkpoint whose stats were saved under a dataset prefix.
    """
    path = Path(path)
    raw_cfg = read_json(path / "config.json", "checkpoint file")
    config, backbone_dir = policy_config_from_lerobot(raw_cfg, source=str(path / "config.json"))
    tensors = read_safetensors(path / "model.safetensors")
    buffers = {k: tensors.pop(k) for k in list(tensors) if k.startswith(NORM_MODULES)}
    eps, stats = read_lerobot_stats(path, config, buffers, stats_rename or {})
    config = replace(config, norm_eps=eps)
    tokenizer = _resolve_tokenizer(tokenizer_path, (path, backbone_dir), config)
    weights = lerobot_to_ours(tensors, config.model, str(path / "model.safetensors"))
    check_finite(weights, str(path / "model.safetensors"))
    # Names and shapes before the model is allocated: a config that does not fit fails without a big allocation.
    check_shapes(config.model, {k: v.shape for k, v in weights.items()}, str(path / "model.safetensors"))
    policy = SmolVLAPolicy(config, stats, tokenizer, model=uninitialised_model(config.model))
    strict_load(policy.model, weights, str(path))
    return policy.to(device=device, dtype=dtype)


def lerobot_to_ours(tensors: dict[str, torch.Tensor], cfg: ModelConfig, source: str) -> dict[str, torch.Tensor]:
    """Rename LeRobot weight keys to ours; lm_head is shape-checked then dropped; unknown keys are an error.

    `model._orig_mod.X` (weights saved from a torch.compile'd model) is first read as `model.X`, as LeRobot's
    loader does; a key stored under both spellings is an error.
    """
    tensors, _ = rename_prefixes(tensors, ((COMPILED_PREFIX, "model."), ("", "")), source)
    lm_head = tensors.pop(LEROBOT_LM_HEAD, None)
    if lm_head is not None:
        check_shape(LEROBOT_LM_HEAD, lm_head, (cfg.decoder.vocab_size, cfg.decoder.hidden), source)
    ours, unmatched = rename_prefixes(tensors, LEROBOT_PREFIXES, source)
    if unmatched:
        raise ValueError(f"{source}: unexpected keys (not part of LeRobot's SmolVLA layout): {sorted(unmatched)[:20]}")
    return ours


def policy_config_from_lerobot(raw: dict[str, Any], source: str = "config.json") -> tuple[PolicyConfig, Path | None]:
    """SmolVLAConfig dict -> (PolicyConfig, local backbone dir or None). Unsupported options are errors."""
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: expected a JSON object (LeRobot SmolVLAConfig), got {type(raw).__name__}")
    if raw.get("type", "smolvla") != "smolvla":
        raise ValueError(f"{source}: policy type is {raw.get('type')!r}, expected 'smolvla'")
    c = {**LEROBOT_DEFAULTS, **raw}
    for name, supported in _UNSUPPORTED:
        if c[name] != supported:
            raise ValueError(f"{source}: {name}={c[name]!r} is not supported (only {supported!r})")
    if c["prefix_length"] is not None and c["prefix_length"] > 0:
        raise ValueError(f"{source}: prefix_length={c['prefix_length']} (fixed-length prefix padding) is not supported")
    model_cfg, backbone_dir = _backbone_config(c["vlm_model_name"], c["num_vlm_layers"], source)
    kept = model_cfg.decoder.layers
    if c["num_expert_layers"] > 0 and c["num_expert_layers"] != kept:
        raise ValueError(
            f"{source}: num_expert_layers={c['num_expert_layers']} != the {kept} kept VLM layers "
            f"(num_vlm_layers={c['num_vlm_layers']}) is not supported (one expert layer per kept VLM layer)"
        )
    model_cfg = replace(
        model_cfg,
        expert=ExpertConfig(
            width_factor=c["expert_width_multiplier"],
            self_attn_every_n_layers=c["self_attn_every_n_layers"],
            mlp_multiple_of=256,  # LeRobot sizes the expert MLP to a multiple of 256
        ),
        max_state_dim=c["max_state_dim"],
        max_action_dim=c["max_action_dim"],
        chunk_size=c["chunk_size"],
        num_steps=c["num_steps"],
        max_lang_tokens=c["tokenizer_max_length"],
        min_period=c["min_period"],
        max_period=c["max_period"],
    )
    resize = c["resize_imgs_with_padding"]
    size = model_cfg.vision.image_size
    if resize is None or list(resize) != [size, size]:
        raise ValueError(
            f"{source}: resize_imgs_with_padding={resize} must equal the vision image size [{size}, {size}]"
        )
    cameras, state_dim, action_dim = _features(c, source)
    modes = _norm_modes(c["normalization_mapping"], source)
    config = PolicyConfig(
        model=model_cfg,
        camera_keys=cameras,
        empty_cameras=c["empty_cameras"],
        state_dim=state_dim,
        action_dim=action_dim,
        n_action_steps=c["n_action_steps"],
        state_norm=modes["STATE"],
        action_norm=modes["ACTION"],
    )
    return config, backbone_dir


def _backbone_config(name: str, num_vlm_layers: int, source: str) -> tuple[ModelConfig, Path | None]:
    """Backbone architecture with its first `num_vlm_layers` text layers. LeRobot slices the layer list
    (`layers[:num_vlm_layers]`) only for a positive value, so it keeps all of them when num_vlm_layers <= 0
    or exceeds the backbone's layer count: the backbone (and so the weights) decides, here as there."""
    local = Path(name)
    if local.is_dir():
        cfg, backbone_dir = load_backbone_config(local, 1), local
    else:
        known = known_backbone_config(name, 1)
        if known is None:
            raise ValueError(
                f"{source}: vlm_model_name {name!r} is neither a local backbone directory nor a known backbone "
                f"{sorted(KNOWN_BACKBONES)}; nothing is downloaded, so pass a local SmolVLM2 directory"
            )
        cfg, backbone_dir = known, None
    total = cfg.decoder.total_layers
    kept = min(num_vlm_layers, total) if num_vlm_layers > 0 else total
    return replace(cfg, decoder=replace(cfg.decoder, layers=kept)), backbone_dir


def _features(c: dict[str, Any], source: str) -> tuple[tuple[str, ...], int, int]:
    """-> (real camera keys in config order, state_dim, action_dim) from input/output_features."""
    inputs, outputs = c.get("input_features") or {}, c.get("output_features") or {}
    # LeRobot writes its empty-camera placeholders into input_features; they are our `empty_cameras`.
    placeholders = {f"{OBS_IMAGES_PREFIX}empty_camera_{i}" for i in range(c["empty_cameras"])}
    cameras, state_dim = [], None
    for key, feat in inputs.items():
        kind, shape = feat.get("type"), list(feat.get("shape", []))
        if kind == "VISUAL":
            if key not in placeholders:
                cameras.append(key)
        elif kind == "STATE" and key == OBS_STATE and len(shape) == 1:
            state_dim = shape[0]
        else:
            raise ValueError(f"{source}: unsupported input feature {key!r} of type {kind} and shape {shape}")
    if state_dim is None:
        raise ValueError(f"{source}: input_features lacks {OBS_STATE!r} (type STATE, shape [D])")
    action = outputs.get(ACTION)
    if set(outputs) != {ACTION} or action.get("type") != "ACTION" or len(action.get("shape", [])) != 1:
        raise ValueError(f"{source}: output_features must be exactly {{'action': ACTION [D]}}, got {outputs}")
    return tuple(cameras), state_dim, action["shape"][0]


def _norm_modes(mapping: dict[str, str], source: str) -> dict[str, str]:
    if mapping.get("VISUAL", "IDENTITY") != "IDENTITY":
        raise ValueError(f"{source}: VISUAL normalisation {mapping['VISUAL']!r} is not supported (only IDENTITY)")
    modes = {}
    for kind in ("STATE", "ACTION"):
        mode = mapping.get(kind, "MEAN_STD")
        if mode not in _MODES:
            raise ValueError(
                f"{source}: {kind} normalisation {mode!r} is not supported; expected one of {list(_MODES)}"
            )
        modes[kind] = _MODES[mode]
    return modes


def read_lerobot_stats(
    path: Path, config: PolicyConfig, buffers: dict[str, torch.Tensor], rename: Mapping[str, str]
) -> tuple[float, NormStats]:
    """-> (eps, stats) from processor state files, or from old in-weights buffers when those are absent."""
    pre, post = path / PRE_FILE, path / POST_FILE
    if pre.is_file() or post.is_file():
        eps, pre_flat = _processor_state(path, PRE_FILE, "normalizer_processor", config)
        post_eps, post_flat = _processor_state(path, POST_FILE, "unnormalizer_processor", config)
        if post_eps != eps:
            raise ValueError(f"{path}: normaliser eps {eps} != unnormaliser eps {post_eps}")
        sources = (str(path / PRE_FILE), str(path / POST_FILE))
        pre_flat, post_flat = _rename(pre_flat, rename, sources[0]), _rename(post_flat, rename, sources[1])
        if buffers:
            logger.warning(
                "%s: ignoring %d legacy normalisation buffers; processor files take precedence", path, len(buffers)
            )
    else:
        eps, pre_flat, post_flat = 1e-8, {}, {}
        for key, value in _rename(buffers, rename, str(path / "model.safetensors")).items():
            (post_flat if key.startswith("unnormalize_outputs.") else pre_flat)[key] = value
        pre_flat, post_flat = _from_buffers(pre_flat, config), _from_buffers(post_flat, config)
        sources = (f"{path}/model.safetensors normalize_* buffers", f"{path}/model.safetensors unnormalize_* buffers")
    dims, modes, cams = config.feature_dims(), config.norm_modes(), config.camera_keys
    state = NormStats.from_flat(
        pre_flat, {OBS_STATE: dims[OBS_STATE]}, modes, source=sources[0], ignore_features=(ACTION, *cams)
    )
    action = NormStats.from_flat(
        post_flat, {ACTION: dims[ACTION]}, modes, source=sources[1], ignore_features=(OBS_STATE, *cams)
    )
    for stat in ("mean", "std"):
        key = f"{ACTION}.{stat}"
        if key in pre_flat and key in post_flat and not torch.allclose(pre_flat[key].float(), post_flat[key].float()):
            raise ValueError(f"{path}: {key} differs between the normaliser and the unnormaliser stats")
    return eps, NormStats({**state.stats, **action.stats})


def _processor_state(
    path: Path, filename: str, registry_name: str, config: PolicyConfig
) -> tuple[float, dict[str, torch.Tensor]]:
    steps = [s for s in processor_steps(path / filename) if s.get("registry_name") == registry_name]
    if len(steps) != 1:
        raise ValueError(f"{path / filename}: expected one '{registry_name}' step, found {len(steps)}")
    step = steps[0]
    if "state_file" not in step:
        raise ValueError(f"{path / filename}: the '{registry_name}' step names no state_file")
    step_config = step.get("config", {})
    if "norm_map" in step_config:
        _check_processor_norm_map(step_config["norm_map"], config, f"{path / filename} '{registry_name}'")
    only = step_config.get("normalize_observation_keys")
    if only is not None and OBS_STATE not in only and config.state_norm != "identity":
        # LeRobot then leaves the state un-normalised whatever the norm_map says.
        raise ValueError(
            f"{path / filename}: normalize_observation_keys {sorted(only)} excludes {OBS_STATE!r}, "
            f"but config.json normalises it ({config.state_norm})"
        )
    eps = float(step_config.get("eps", 1e-8))
    # The file name comes from the checkpoint: it must not make us read a file outside the checkpoint dir.
    state_file = confine(path, step["state_file"], f"{path / filename} '{registry_name}' state_file")
    return eps, read_safetensors(state_file)


def processor_steps(path: Path) -> list[dict[str, Any]]:
    """The "steps" of a LeRobot processor JSON (policy_preprocessor.json / policy_postprocessor.json)."""
    spec = read_json(path, "checkpoint file")
    steps = spec.get("steps", []) if isinstance(spec, dict) else None
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise ValueError(f"{path}: expected a JSON object whose 'steps' is a list of objects")
    return steps


def _check_processor_norm_map(norm_map: dict[str, str], config: PolicyConfig, source: str) -> None:
    """LeRobot normalises with the processor step's own norm_map (a feature type it lacks is left as is), not
    with config.json's normalization_mapping: refuse a checkpoint where the two disagree."""
    want = {"VISUAL": "identity", "STATE": config.state_norm, "ACTION": config.action_norm}
    got = {kind: _MODES.get(norm_map.get(kind, "IDENTITY"), norm_map.get(kind)) for kind in want}
    if got != want:
        raise ValueError(
            f"{source}: norm_map {norm_map} disagrees with config.json's normalization_mapping "
            f"(expected {want}, the processor applies {got})"
        )


def _from_buffers(raw: dict[str, torch.Tensor], config: PolicyConfig) -> dict[str, torch.Tensor]:
    """`normalize_inputs.buffer_observation_state.mean` -> `observation.state.mean`; others kept verbatim
    (so the strict parser names them)."""
    features = [OBS_STATE, ACTION, *config.camera_keys]
    by_buffer = {"buffer_" + f.replace(".", "_"): f for f in features}
    out = {}
    for key, value in raw.items():
        _, _, rest = key.partition(".")
        buffer, _, stat = rest.rpartition(".")
        out[f"{by_buffer[buffer]}.{stat}" if buffer in by_buffer else key] = value
    return out


def _rename(flat: dict[str, torch.Tensor], rename: Mapping[str, str], source: str) -> dict[str, torch.Tensor]:
    """Apply the user's `stats_rename` prefixes; keys matching none are kept for the strict parser to name."""
    return rename_prefixes(flat, (*rename.items(), ("", "")), f"{source} (stats_rename {dict(rename)})")[0]


def _resolve_tokenizer(
    tokenizer_path: str | Path | None, places: tuple[Path | None, ...], config: PolicyConfig
) -> TaskTokenizer | None:
    """The given tokenizer, else the first tokenizer.json among `places` (checkpoint dir, local backbone dir)."""
    if tokenizer_path is None:
        found = [p / "tokenizer.json" for p in places if p is not None and (p / "tokenizer.json").is_file()]
        if not found:
            logger.warning(
                "no tokenizer.json in %s: the policy accepts only pre-tokenised language inputs "
                "(pass tokenizer_path to use task strings)",
                " or ".join(str(p) for p in places if p is not None),
            )
            return None
        tokenizer_path = found[0]
    return TaskTokenizer.from_file(tokenizer_path, config.max_lang_tokens, truncate=config.truncate_task)
