"""Decode each frame once: a dataset's items kept in memory, cameras as uint8, up to a byte budget.

Training visits every frame of a small dataset once per epoch, and decoding its video frames is most of the
cost of an item on CPU. `DecodedFrames` keeps the items it has built (cameras as the uint8 frames they
were decoded to, 4x smaller than float32) until `max_bytes` is used, then builds the rest on each visit as
before. Items come back exactly as the uncached dataset returns them (float32 = uint8 / 255).
With DataLoader workers, each worker holds its own cache (budget per worker).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from smolvla.data.dataset import LeRobotDataset


class DecodedFrames(Dataset):
    """`base`'s items with camera frames as float32[..., 3, H, W] in [0, 1]; `base` must return uint8 cameras."""

    def __init__(self, base: LeRobotDataset, max_bytes: int) -> None:
        if not base.return_uint8:
            raise ValueError("DecodedFrames needs a LeRobotDataset opened with return_uint8=True")
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.base = base
        self.max_bytes = max_bytes
        self.cameras = frozenset(base.camera_keys)
        self.used_bytes = 0
        self._items: dict[int, dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self._items.get(i)
        if item is None:
            item = self.base[i]
            size = sum(v.nbytes for v in item.values() if isinstance(v, torch.Tensor))
            if self.used_bytes + size <= self.max_bytes:
                self._items[i] = item
                self.used_bytes += size
        return {k: v.float().div_(255.0) if k in self.cameras else v for k, v in item.items()}
