"""One rollout-video frame of an env, the same on every evaluation path (in-process, async engine, demo).

An env that draws its video apart from the policy input (a `video_frame()` method, e.g. the SO-101 suite's
256 px per camera) gives crisp videos whatever camera size its policy sees; any other env gives what the
policy saw, its cameras side by side (the writer may upscale those, `eval.video.write_rollout_video`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from smolvla.envs.base import SimEnv


def has_own_video(env: SimEnv) -> bool:
    """True if `env` renders video frames of its own (`env.video_frame() -> uint8[H, W, 3]`)."""
    return callable(getattr(env, "video_frame", None))


def tile_cameras(obs: dict[str, Any], camera_keys: tuple[str, ...]) -> np.ndarray:
    """The observed cameras of one step left to right in `camera_keys` order: uint8[H, W * n_cams, 3]."""
    return np.concatenate([obs[k] for k in camera_keys], axis=1)


def video_frame(env: SimEnv, obs: dict[str, Any]) -> np.ndarray:
    """The frame of the env's current state, uint8[H, W, 3]: its own rendering if it has one, else the
    cameras of `obs` (the observation of that same state) side by side."""
    return env.video_frame() if has_own_video(env) else tile_cameras(obs, env.camera_keys)
