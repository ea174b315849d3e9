"""LeRobot 0.6.1's own VLAFlowMatching holding our random weights, as one more engine (`latency.py
--vs-lerobot`). Only its modelling code runs, imported from an unpacked wheel as the golden-file script does
(scripts/make_lerobot_golden.py, whose docstring shows how to unpack it); SMOLVLA_LEROBOT_SRC points at it.

The backbone is built from a SmolVLM2 config written here from our ModelConfig (LeRobot's
load_vlm_weights=False path), then every parameter is copied from our model through the checkpoint key map,
and the actions on the same inputs and noise are returned, so the caller can check both hold one model.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import torch

from smolvla.model.config import ModelConfig
from smolvla.model.smolvla import SmolVLAModel
from smolvla.policy.keymaps import LEROBOT_LM_HEAD, LEROBOT_PREFIXES

ROOT = Path(__file__).resolve().parents[1]


def smolvlm_config(cfg: ModelConfig) -> dict:
    """A SmolVLM2 backbone config (transformers' SmolVLMConfig kwargs) with our architecture's sizes."""
    v, d = cfg.vision, cfg.decoder
    return {
        "vision_config": {
            "hidden_size": v.hidden,
            "intermediate_size": v.mlp,
            "num_hidden_layers": v.layers,
            "num_attention_heads": v.heads,
            "image_size": v.image_size,
            "patch_size": v.patch_size,
            "layer_norm_eps": v.layer_norm_eps,
        },
        "text_config": {
            "model_type": "llama",
            "hidden_size": d.hidden,
            "intermediate_size": d.mlp,
            "num_hidden_layers": d.total_layers,
            "num_attention_heads": d.heads,
            "num_key_value_heads": d.kv_heads,
            "head_dim": d.head_dim,
            "vocab_size": d.vocab_size,
            "rms_norm_eps": d.rms_norm_eps,
        },
        "scale_factor": cfg.connector.scale_factor,
    }


def build_lerobot(model: SmolVLAModel, steps: int, workdir: Path) -> torch.nn.Module:
    """LeRobot's VLAFlowMatching with `model`'s weights (fp32, eval)."""
    src = os.environ.get("SMOLVLA_LEROBOT_SRC")
    if not src:
        raise SystemExit("--vs-lerobot: set SMOLVLA_LEROBOT_SRC to an unpacked lerobot 0.6.1 wheel and its deps")
    sys.path.insert(0, str(ROOT / "scripts"))
    import transformers
    from make_lerobot_golden import LEROBOT_CONFIG, _crop_keep_first, import_lerobot_modeling

    modeling = import_lerobot_modeling(src)
    transformers.DynamicCache.crop = _crop_keep_first
    cfg = model.config
    transformers.SmolVLMConfig(**smolvlm_config(cfg)).save_pretrained(workdir)
    overrides = {
        "num_vlm_layers": cfg.decoder.layers,
        "self_attn_every_n_layers": cfg.expert.self_attn_every_n_layers,
        "expert_width_multiplier": cfg.expert.width_factor,
        "max_state_dim": cfg.max_state_dim,
        "max_action_dim": cfg.max_action_dim,
        "chunk_size": cfg.chunk_size,
        "min_period": cfg.min_period,
        "max_period": cfg.max_period,
        "num_steps": steps,
    }
    # On the meta device: load_state_dict(assign=True) below allocates, so no time goes into default inits.
    # LeRobot prints progress to stdout, which is the benchmark's JSON: sent to stderr instead.
    with torch.device("meta"), contextlib.redirect_stdout(sys.stderr):
        lerobot = modeling.VLAFlowMatching(SimpleNamespace(**(LEROBOT_CONFIG | overrides), vlm_model_name=str(workdir)))
    ours_to_lerobot = [(new, old.removeprefix("model.")) for old, new in LEROBOT_PREFIXES]
    state = {}
    for key, value in model.state_dict().items():
        old, new = next((o, n) for o, n in ours_to_lerobot if key.startswith(o))
        state[new + key[len(old) :]] = value
    lm_head = LEROBOT_LM_HEAD.removeprefix("model.")
    state[lm_head] = torch.zeros(cfg.decoder.vocab_size, cfg.decoder.hidden)  # unused by sampling
    lerobot.load_state_dict(state, strict=True, assign=True)
    return lerobot.float().eval()


def lerobot_engine(model: SmolVLAModel, inputs: tuple[torch.Tensor, ...], args: argparse.Namespace):
    """One chunk of LeRobot's `sample_actions` on our inputs (one image tensor per camera) -> (actions, {})."""
    *obs, noise = inputs
    images, image_masks, lang_tokens, lang_masks, state = obs
    cams, masks = list(images.unbind(1)), list(image_masks.unbind(1))
    with tempfile.TemporaryDirectory(prefix="smolvla_lerobot_") as workdir:
        lerobot = build_lerobot(model, args.steps, Path(workdir))

    def chunk() -> tuple[torch.Tensor, dict[str, float]]:
        with torch.inference_mode():
            return lerobot.sample_actions(cams, masks, lang_tokens, lang_masks, state, noise=noise.clone()), {}

    return chunk
