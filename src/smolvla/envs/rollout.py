"""Run one episode of a policy in a `SimEnv` and keep it as an in-memory `Episode`.

Frame t pairs the observation seen before step t with the action taken at step t (the LeRobot dataset
convention), so an episode of T steps has T frames; the observation after the last step is not stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from smolvla.envs.base import SimEnv
from smolvla.types import ACTION, OBS_ENV_STATE, OBS_STATE

# A policy maps the latest observation dict to an action float32[action_dim].
PolicyFn = Callable[[dict[str, Any]], np.ndarray]


@dataclass
class Episode:
    """One rollout. frames: key -> stacked array over time:
    "observation.images.<cam>" uint8[T, H, W, 3], "observation.state" float32[T, state_dim],
    "action" float32[T, action_dim], and "observation.environment_state" float32[T, K] when the env offers
    a privileged state (`SimEnv.privileged_state`); rewards float32[T]."""

    env_name: str
    task: str
    seed: int | None
    fps: int
    frames: dict[str, np.ndarray]
    rewards: np.ndarray
    success: bool
    stage_scores: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rewards)

    def validate(self) -> None:
        """Check every per-frame array has T rows (raises ValueError naming the key)."""
        n = len(self.rewards)
        for key, arr in self.frames.items():
            if len(arr) != n:
                raise ValueError(
                    f"episode of {self.env_name} (seed {self.seed}): {key!r} has {len(arr)} rows, want {n}"
                )


def collect_episode(
    env: SimEnv,
    policy: PolicyFn,
    seed: int | None = None,
    max_steps: int | None = None,
    on_reset: Callable[[], None] | None = None,
) -> Episode:
    """Reset `env` with `seed` and step `policy` until success, failure or the step limit.

    max_steps: at most this many steps (default and upper bound: env.max_episode_steps).
    on_reset: called right after env.reset (e.g. a scripted expert's or a policy's `reset`).
    """
    limit = env.max_episode_steps if max_steps is None else max_steps
    if not 0 < limit <= env.max_episode_steps:
        raise ValueError(f"max_steps must be in [1, {env.max_episode_steps}] for {env.name}, got {max_steps}")
    obs = env.reset(seed)
    if on_reset is not None:
        on_reset()
    keys = [*env.camera_keys, OBS_STATE]
    columns: dict[str, list[np.ndarray]] = {k: [] for k in [*keys, ACTION]}
    privileged = env.privileged_state() is not None
    if privileged:
        columns[OBS_ENV_STATE] = []
    rewards: list[float] = []
    info: dict[str, Any] = {"success": False}
    for _ in range(limit):
        action = np.asarray(policy(obs), dtype=np.float32)
        for k in keys:
            columns[k].append(obs[k])
        if privileged:
            columns[OBS_ENV_STATE].append(env.privileged_state())
        columns[ACTION].append(action)
        obs, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        if terminated or truncated:
            break
    episode = Episode(
        env_name=env.name,
        task=env.task,
        seed=seed,
        fps=env.fps,
        frames={k: np.stack(v) for k, v in columns.items()},
        rewards=np.asarray(rewards, dtype=np.float32),
        success=bool(info["success"]),
        stage_scores=dict(info.get("stage_scores", {})),
    )
    episode.validate()
    return episode


def expert_episode(
    env: SimEnv, seed: int | None = None, max_steps: int | None = None, expert_noise: float = 0.0
) -> Episode:
    """One episode of the env's scripted expert.

    expert_noise: off-target distance (m) of the expert's first approaches, corrected before it acts
        (`SO101SuiteExpert`); drawn from `seed`. Only for envs whose experts take "approach_noise".
    """
    if expert_noise:
        if "approach_noise" not in env.expert_options:
            raise ValueError(f"{env.name}: its scripted expert takes no approach noise (got {expert_noise} m)")
        expert = env.scripted_expert(approach_noise=expert_noise, seed=seed)
    else:
        expert = env.scripted_expert()
    return collect_episode(env, expert.act, seed=seed, max_steps=max_steps, on_reset=expert.reset)
