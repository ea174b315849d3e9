"""Agents: what acts in an evaluation episode. `reset()` at episode start, `act(obs) -> action`.

`PolicyAgent` runs a SmolVLAPolicy in-process, converting the environment's observation (uint8 HWC
cameras, float state, task string) into the policy's batch layout (float [0, 1] CHW, batch of one).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch

from smolvla.policy.policy import SmolVLAPolicy
from smolvla.policy.transforms import frames_to_images
from smolvla.types import OBS_IMAGES_PREFIX, OBS_STATE, TASK


class Agent(Protocol):
    def reset(self) -> None: ...

    def act(self, obs: dict[str, Any]) -> np.ndarray: ...


def obs_to_batch(obs: dict[str, Any], camera_keys: tuple[str, ...]) -> dict[str, Any]:
    """One environment observation -> a policy batch of size 1.

    obs: "observation.images.<cam>" uint8[H, W, 3], "observation.state" float[D], "task" str.
    out: "observation.images.<cam>" float32[1, 3, H, W] in [0, 1], "observation.state" float32[1, D], "task" [str].
    """
    batch: dict[str, Any] = {}
    for key in camera_keys:
        if key not in obs:
            cams = sorted(k for k in obs if k.startswith(OBS_IMAGES_PREFIX))
            raise ValueError(f"observation lacks camera {key!r} the policy needs; it has {cams}")
        img = np.asarray(obs[key])
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[-1] != 3:
            raise ValueError(f"{key}: expected uint8[H, W, 3], got {img.dtype}{list(img.shape)}")
        batch[key] = frames_to_images(img[None])
    batch[OBS_STATE] = torch.as_tensor(np.asarray(obs[OBS_STATE], dtype=np.float32)).unsqueeze(0)
    batch[TASK] = [obs[TASK]]
    return batch


class PolicyAgent:
    """A policy acting through its action queue (`select_action`), one action per control step."""

    def __init__(self, policy: SmolVLAPolicy) -> None:
        self.policy = policy.eval()

    def reset(self) -> None:
        self.policy.reset()

    @torch.inference_mode()
    def act(self, obs: dict[str, Any]) -> np.ndarray:
        action = self.policy.select_action(obs_to_batch(obs, self.policy.config.camera_keys))
        return action[0].float().cpu().numpy()
