"""The one simulation-environment interface every adapter implements, and the scripted-expert interface.

An observation is a LeRobot-style dict, the same keys a dataset frame and a policy batch use:

    "observation.images.<cam>"  uint8[H, W, 3]   (one per camera, HWC, RGB)
    "observation.state"         float32[state_dim]
    "task"                      str              (the natural-language instruction)

`SimEnv.step` checks the action, counts steps and applies the time limit once for every adapter, so an
eval loop or a `Robot`-style wrapper (get_observation / send_action) sees identical behaviour everywhere.
Adapters implement `_reset(seed)` and `_step(action)` only.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from smolvla.types import OBS_IMAGES_PREFIX, OBS_STATE, TASK


@dataclass
class StepResult:
    """What an adapter's `_step` reports; `SimEnv.step` turns it into the gymnasium 5-tuple.

    failed: the episode cannot succeed any more (e.g. object knocked out of the workspace).
    stage_scores: partial credit per stage (e.g. {"pick": 0.5, "place": 0.0}); empty for single-stage tasks.
    """

    obs: dict[str, Any]
    reward: float
    success: bool
    failed: bool = False
    stage_scores: dict[str, float] = field(default_factory=dict)


class SimEnv(abc.ABC):
    """A simulated task with LeRobot-style observations and a fixed time limit.

    Subclasses set in `__init__`: `name` (registry name), `task` (instruction), `camera_keys` (full keys),
    `image_size` (square H = W), `state_dim`, `action_dim`, `fps`, `max_episode_steps`, and optionally
    `action_low`/`action_high` (float32[action_dim]) when actions have a known valid range.
    """

    name: str
    task: str
    camera_keys: tuple[str, ...]
    image_size: int
    state_dim: int
    action_dim: int
    fps: int
    max_episode_steps: int
    action_low: np.ndarray | None = None
    action_high: np.ndarray | None = None

    _elapsed: int | None = None
    _done: bool = False

    def reset(self, seed: int | None = None) -> dict[str, Any]:
        """Start an episode; the same seed gives the same initial scene and observation."""
        if seed is not None and (not isinstance(seed, int | np.integer) or seed < 0):
            raise ValueError(f"{self.name}: seed must be a non-negative int or None, got {seed!r}")
        obs = self._reset(None if seed is None else int(seed))
        self._elapsed = 0
        self._done = False
        return obs

    def step(self, action: np.ndarray) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Apply one action float32[action_dim] -> (obs, reward, terminated, truncated, info).

        terminated: the task succeeded or can no longer succeed; truncated: the time limit was reached.
        info: {"success": bool, "stage_scores": {stage: score}, only for tasks with stages}.
        """
        if self._elapsed is None:
            raise RuntimeError(f"{self.name}: call reset() before step()")
        if self._done:
            raise RuntimeError(f"{self.name}: episode already ended after {self._elapsed} steps; call reset()")
        result = self._step(self._check_action(action))
        self._elapsed += 1
        terminated = result.success or result.failed
        truncated = not terminated and self._elapsed >= self.max_episode_steps
        self._done = terminated or truncated
        info: dict[str, Any] = {"success": bool(result.success)}
        if result.stage_scores:
            info["stage_scores"] = dict(result.stage_scores)
        return result.obs, float(result.reward), terminated, truncated, info

    @property
    def elapsed_steps(self) -> int:
        """Steps taken in the current episode (0 right after reset)."""
        return 0 if self._elapsed is None else self._elapsed

    def _check_action(self, action: np.ndarray) -> np.ndarray:
        arr = np.asarray(action)
        if arr.shape != (self.action_dim,):
            raise ValueError(f"{self.name}: action must have shape ({self.action_dim},), got {arr.shape}")
        if not np.issubdtype(arr.dtype, np.number):
            raise ValueError(f"{self.name}: action must be numeric, got dtype {arr.dtype}")
        arr = arr.astype(np.float32)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{self.name}: action has non-finite values {arr.tolist()}")
        return arr

    def observation_features(self) -> dict[str, dict]:
        """LeRobot feature specs (dtype, shape, names) of the observation and action, for dataset writers."""
        feats: dict[str, dict] = {
            key: {
                "dtype": "video",
                "shape": [self.image_size, self.image_size, 3],
                "names": ["height", "width", "channels"],
            }
            for key in self.camera_keys
        }
        feats[OBS_STATE] = {"dtype": "float32", "shape": [self.state_dim], "names": None}
        feats["action"] = {"dtype": "float32", "shape": [self.action_dim], "names": None}
        return feats

    def _make_obs(self, images: dict[str, np.ndarray], state: np.ndarray) -> dict[str, Any]:
        """Assemble the observation dict from camera name -> uint8[H, W, 3] and float32[state_dim]."""
        obs: dict[str, Any] = {OBS_IMAGES_PREFIX + cam: img for cam, img in images.items()}
        obs[OBS_STATE] = np.asarray(state, dtype=np.float32)
        obs[TASK] = self.task
        return obs

    @abc.abstractmethod
    def _reset(self, seed: int | None) -> dict[str, Any]:
        """Reset the simulator (re-seeding it when `seed` is given) and return the first observation."""

    @abc.abstractmethod
    def _step(self, action: np.ndarray) -> StepResult:
        """Apply a validated float32[action_dim] action for one control step."""

    @abc.abstractmethod
    def render(self) -> dict[str, np.ndarray]:
        """Current frames, camera name -> uint8[image_size, image_size, 3] (e.g. for rollout videos)."""

    def privileged_state(self) -> np.ndarray | None:
        """Object poses a recording keeps as "observation.environment_state" float32[K] (fixed K per env
        family), or None when the env has none to offer. Never part of what a policy is given."""
        return None

    # Keyword options `scripted_expert` accepts (e.g. off-target approaches for recorded corrections).
    expert_options: tuple[str, ...] = ()

    def scripted_expert(self) -> Expert:
        """A hand-written controller that solves this task from simulator state (for demonstrations)."""
        raise NotImplementedError(f"{self.name}: no scripted expert for this environment")

    def close(self) -> None:  # noqa: B027  (optional hook: envs without resources keep the default)
        """Free renderers and simulator resources; the env cannot be used afterwards."""

    def __enter__(self) -> SimEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Expert(abc.ABC):
    """A scripted controller bound to one env; it may read privileged simulator state through that env."""

    def reset(self) -> None:  # noqa: B027  (optional hook: stateless experts keep the default)
        """Forget per-episode state; call after every `env.reset`."""

    @abc.abstractmethod
    def act(self, obs: dict[str, Any]) -> np.ndarray:
        """The next action float32[action_dim] for the env's current state (`obs` is its last observation)."""
