"""Write a fake LeRobot SmolVLA checkpoint directory from one of our policies (test support only).

The key names are spelled out literally here, independently of `smolvla.policy.keymaps`, so a wrong
entry in the loader's table cannot be hidden by the same mistake in the writer.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from smolvla import SmolVLAPolicy

OURS_TO_LEROBOT = {
    "vision.": "model.vlm_with_expert.vlm.model.vision_model.",
    "connector.": "model.vlm_with_expert.vlm.model.connector.",
    "text.": "model.vlm_with_expert.vlm.model.text_model.",
    "expert.": "model.vlm_with_expert.lm_expert.",
    "state_proj.": "model.state_proj.",
    "action_in_proj.": "model.action_in_proj.",
    "action_out_proj.": "model.action_out_proj.",
    "action_time_mlp_in.": "model.action_time_mlp_in.",
    "action_time_mlp_out.": "model.action_time_mlp_out.",
}


def lerobot_weights(policy: SmolVLAPolicy) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in policy.model.state_dict().items():
        prefix = next(p for p in OURS_TO_LEROBOT if key.startswith(p))
        out[OURS_TO_LEROBOT[prefix] + key[len(prefix) :]] = value.clone()
    d = policy.config.model.decoder
    out["model.vlm_with_expert.vlm.lm_head.weight"] = torch.randn(d.vocab_size, d.hidden)
    return out


def write_lerobot_checkpoint(
    policy: SmolVLAPolicy, path: Path, config: dict, *, layout: str = "processor", stats_prefix: str = ""
) -> Path:
    """layout "processor" (lerobot >= 0.4: processor JSON + state files) or "legacy" (buffers in weights).

    stats_prefix: prepended to the stats keys (new layout) to imitate dataset-prefixed checkpoints.
    """
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config))
    weights = lerobot_weights(policy)
    s = policy.stats.stats
    if layout == "legacy":
        for stat in ("mean", "std"):
            weights[f"normalize_inputs.buffer_observation_state.{stat}"] = s["observation.state"][stat].clone()
            weights[f"normalize_targets.buffer_action.{stat}"] = s["action"][stat].clone()
            weights[f"unnormalize_outputs.buffer_action.{stat}"] = s["action"][stat].clone()
    else:
        flat = {f"{stats_prefix}{k}": v for k, v in policy.stats.to_flat().items()}
        # LeRobot's state files also carry stats the normaliser does not use (min/max, camera stats).
        flat[f"{stats_prefix}action.min"] = torch.zeros(policy.config.action_dim)
        flat[f"{stats_prefix}{policy.config.camera_keys[0]}.mean"] = torch.zeros(3, 1, 1)
        pre_file = "policy_preprocessor_step_5_normalizer_processor.safetensors"
        post_file = "policy_postprocessor_step_0_unnormalizer_processor.safetensors"
        save_file(flat, str(path / pre_file))
        save_file(flat, str(path / post_file))
        norm = {"eps": 1e-8, "norm_map": {"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"}}
        pre_steps = [
            {"registry_name": "rename_observations_processor", "config": {"rename_map": {}}},
            {"registry_name": "to_batch_processor", "config": {}},
            {"registry_name": "normalizer_processor", "config": norm, "state_file": pre_file},
        ]
        post_steps = [{"registry_name": "unnormalizer_processor", "config": norm, "state_file": post_file}]
        (path / "policy_preprocessor.json").write_text(json.dumps({"name": "policy_preprocessor", "steps": pre_steps}))
        (path / "policy_postprocessor.json").write_text(
            json.dumps({"name": "policy_postprocessor", "steps": post_steps})
        )
    save_file({k: v.contiguous() for k, v in weights.items()}, str(path / "model.safetensors"))
    return path
