"""LeRobot's own SmolVLA outputs (tests/fixtures/lerobot_smolvla_golden.safetensors) and our model on them.

The file is written by scripts/make_lerobot_golden.py with lerobot 0.6.1 (see its docstring for the keys);
reading it needs neither LeRobot nor transformers. Its weights carry LeRobot's checkpoint names, so the
golden test also covers our LeRobot key map (`lerobot_to_ours`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors.torch import load_file

from smolvla.model.config import ExpertConfig, ModelConfig, get_config
from smolvla.model.smolvla import SmolVLAModel
from smolvla.policy.keymaps import strict_load
from smolvla.policy.lerobot import lerobot_to_ours

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "lerobot_smolvla_golden.safetensors"
OBS = ("images", "image_masks", "lang_tokens", "lang_masks", "state")
# LeRobot's eager attention and ours accumulate in a different order: measured max |diff| 8e-7 on the
# actions (|a| up to ~4) and 4e-6 on the loss (values up to ~24). Scaling the expert's attention values by
# 1 + 1e-4 already moves them by 5e-5 and 4e-4.
ATOL_ACTIONS, TOL_LOSS = 1e-5, 1e-5


def golden_config() -> ModelConfig:
    """LeRobot's tiny VLAFlowMatching of the generator in our terms (its expert MLP rounds to 256)."""
    return replace(get_config("tiny"), chunk_size=10, num_steps=10, expert=ExpertConfig(mlp_multiple_of=256))


@dataclass
class Golden:
    model: SmolVLAModel  # ours, fp32, holding LeRobot's weights
    inputs: dict[str, torch.Tensor]  # images, image_masks, lang_tokens, lang_masks, state, actions, noise, time
    actions: torch.Tensor  # float32[B, S, A]: LeRobot's sample_actions(noise)
    loss: torch.Tensor  # float32[B, S, A]: LeRobot's unreduced forward(actions, noise, time)


def read_golden(path: Path = GOLDEN) -> Golden:
    if not path.is_file():
        raise FileNotFoundError(
            f"LeRobot golden file missing: {path} (committed; regenerate: scripts/make_lerobot_golden.py)"
        )
    tensors = load_file(str(path))
    cfg = golden_config()
    # Stored as float16 (exactly the values LeRobot ran with in fp32): upcasting loses nothing.
    weights = {k.removeprefix("weights."): v.float() for k, v in tensors.items() if k.startswith("weights.")}
    model = SmolVLAModel(cfg).eval()
    strict_load(model, lerobot_to_ours(weights, cfg, str(path)), str(path))
    inputs = {k.removeprefix("inputs."): v for k, v in tensors.items() if k.startswith("inputs.")}
    return Golden(model, inputs, tensors["outputs.actions"], tensors["outputs.loss"])


@torch.no_grad()
def ours_on(golden: Golden, **replaced: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sampled actions, unreduced loss) of our model on the golden inputs, some optionally replaced."""
    x = golden.inputs | replaced
    obs = [x[k] for k in OBS]
    actions = golden.model.sample_actions(*obs, noise=x["noise"])
    loss = golden.model.compute_loss(*obs, x["actions"], noise=x["noise"], time=x["time"])
    return actions, loss
