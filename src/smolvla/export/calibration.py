"""Calibration observations for int8-static, drawn evenly from a local LeRobot dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from smolvla.data.dataset import LeRobotDataset
from smolvla.export.exporter import Sample
from smolvla.types import OBS_STATE, TASK


def dataset_samples(root: str | Path, camera_keys: tuple[str, ...], frames: int) -> list[Sample]:
    """`frames` observations spread evenly over the dataset at `root`: (uint8[1, H, W, 3] per camera,
    float32[1, D] state, task). The dataset must have the policy's cameras."""
    if frames < 1:
        raise ValueError(f"calibration frames must be >= 1, got {frames}")
    dataset = LeRobotDataset(root, return_uint8=True)
    missing = sorted(set(camera_keys) - set(dataset.camera_keys))
    if missing:
        raise ValueError(f"dataset {root} lacks the policy's cameras {missing}; it has {dataset.camera_keys}")
    picks = np.unique(np.linspace(0, len(dataset) - 1, num=min(frames, len(dataset))).round().astype(int))
    samples = []
    for i in picks:
        item = dataset[int(i)]
        images = {k: item[k].numpy().transpose(1, 2, 0)[None].copy() for k in camera_keys}
        samples.append((images, item[OBS_STATE].numpy().astype(np.float32)[None], str(item[TASK])))
    return samples
