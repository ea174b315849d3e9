"""What the robot client sends: an `Observation` read from the robot and checked against its declared
shapes, and, for a real-time chunking client, the queued actions that will still execute (the prefix).
Torch-free (robot side)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from smolvla.serve.action_queue import TimedAction
from smolvla.serve.protocol import Observation
from smolvla.serve.robot import Robot
from smolvla.types import OBS_STATE, TASK


def rtc_prefix(queue: Sequence[TimedAction], chunk_size: int, delay: int) -> tuple[np.ndarray | None, int]:
    """(queued actions float32[n, action_dim], delay) for a real-time chunking request, both capped at the
    chunk size the server accepts; (None, 0) for an empty queue."""
    if not queue:
        return None, 0
    # The queue is contiguous from the next timestep by construction (merge_chunk, pop_next).
    rows = [item.action for item in queue[:chunk_size]]
    return np.stack(rows).astype(np.float32), min(delay, chunk_size)


def read_observation(
    robot: Robot,
    *,
    obs_id: int,
    episode: int,
    timestep: int,
    must_go: bool,
    default_task: str,
    prefix: np.ndarray | None = None,
    inference_delay: int = 0,
) -> Observation:
    """`robot.get_observation()` as an `Observation` stamped now; ValueError naming the key when a camera
    is not uint8 of its declared (H, W, 3) or the state is not float32[state_dim]. The robot's own task
    string wins over `default_task`."""
    raw = robot.get_observation()
    images = {}
    for key, shape in robot.camera_shapes.items():
        image = raw.get(key)
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.shape != tuple(shape):
            got = f"{image.dtype}{list(image.shape)}" if isinstance(image, np.ndarray) else type(image).__name__
            raise ValueError(f"robot observation {key!r}: expected uint8{list(shape)}, got {got}")
        images[key] = image
    state = np.asarray(raw[OBS_STATE], dtype=np.float32)
    if state.shape != (robot.state_dim,):
        raise ValueError(f"robot observation {OBS_STATE!r}: expected [{robot.state_dim}], got {list(state.shape)}")
    return Observation(
        obs_id=obs_id,
        episode=episode,
        timestep=timestep,
        must_go=must_go,
        images=images,
        state=state,
        task=str(raw.get(TASK, default_task)),
        sent_at=time.monotonic(),
        prefix=prefix,
        inference_delay=inference_delay,
    )
