"""Rollout videos: an episode's frames (`envs.video.video_frame`) written as an H.264 mp4."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from smolvla.data.encode import VideoEncoding, encode_video


def write_rollout_video(frames: np.ndarray, path: Path, fps: int, scale: int = 1) -> Path:
    """frames uint8[T, H, W, 3] -> `path` (mp4, H.264). Odd sizes are padded by one black row/column.

    scale: integer nearest-neighbour upscaling, so 64x64 policy views stay watchable (pixels, no blur).
    """
    if scale < 1:
        raise ValueError(f"video scale must be an integer >= 1, got {scale}")
    if scale > 1:
        frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
    encode_video(frames, path, fps, VideoEncoding.h264())
    return path
