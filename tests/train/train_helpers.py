"""Tiny synthetic LeRobot v3.0 datasets for the training tests, written with the data package's writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from smolvla.data.writer import DatasetWriter

CAMERAS = ("observation.images.top", "observation.images.wrist")
FEATURES = {
    **{cam: {"dtype": "video", "shape": [32, 32, 3], "names": ["height", "width", "channels"]} for cam in CAMERAS},
    "observation.state": {"dtype": "float32", "shape": [6]},
    "action": {"dtype": "float32", "shape": [6]},
}


def write_tiny_dataset(
    root: Path, episodes: int = 3, length: int = 12, seed: int = 0, features=None, tasks=("pick", "place")
) -> Path:
    """Episodes of smooth random motion; the action is the next state (something learnable). Episode i has
    task `tasks[i % len(tasks)]`."""
    rng = np.random.default_rng(seed)
    features = features or FEATURES
    writer = DatasetWriter.create(root, fps=10, features=features)
    for ep in range(episodes):
        state = np.cumsum(rng.normal(0, 0.1, size=(length + 1, 6)), axis=0).astype(np.float32)
        frames = {}
        for cam in [k for k, f in features.items() if f["dtype"] == "video"]:
            h, w, _ = features[cam]["shape"]
            img = np.zeros((length, h, w, 3), dtype=np.uint8)
            img[..., 0] = (np.linspace(0, 255, length)[:, None, None]).astype(np.uint8)
            img[..., 1] = rng.integers(0, 255, size=(1, h, w), dtype=np.uint8)
            frames[cam] = img
        if "observation.state" in features:
            frames["observation.state"] = state[:-1, : features["observation.state"]["shape"][0]]
        frames["action"] = state[1:, : features["action"]["shape"][0]]
        if "observation.environment_state" in features:  # a recorded privileged state: slowly moving objects
            k = features["observation.environment_state"]["shape"][0]
            frames["observation.environment_state"] = np.cumsum(rng.normal(0, 0.01, size=(length, k)), 0).astype(
                np.float32
            )
        writer.add_episode(frames, task=tasks[ep % len(tasks)])
    return root
