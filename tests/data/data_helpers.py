"""Helpers for the data tests: where the LeRobot fixtures live, and tiny datasets written by our writer."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from smolvla.data import DatasetWriter

# Datasets written by LeRobot 0.6.1 and what its reader returned on them, committed (see tests/fixtures/README.md).
FIXTURES = Path(__file__).parents[1] / "fixtures" / "lerobot"
V30 = FIXTURES / "v30" / "so100_2cam"
V21 = FIXTURES / "v21" / "so100_2cam"
REF = FIXTURES / "ref"
CAMS = ("observation.images.top", "observation.images.wrist")


def copy_tree(src: Path, dst: Path) -> Path:
    """Writable copy (tests must never modify the committed fixtures, which may also be read-only)."""
    shutil.copytree(src, dst, copy_function=shutil.copyfile)
    for d, _, files in os.walk(dst):
        os.chmod(d, 0o755)
        for f in files:
            os.chmod(Path(d) / f, 0o644)
    return dst


def coded_frames(length: int, episode: int, h: int = 48, w: int = 64) -> np.ndarray:
    """uint8[T, H, W, 3] like the LeRobot fixtures: grey 4*frame+3 on top, an episode colour below."""
    out = np.zeros((length, h, w, 3), np.uint8)
    out[:, : h // 2] = (4 * np.arange(length) + 3)[:, None, None, None]
    out[:, h // 2 :] = [(60 * episode + 20) % 256, 40, 200]
    return out


def episode_arrays(length: int, episode: int, cams=CAMS, dim: int = 6) -> dict[str, np.ndarray]:
    state = (1000 * episode + np.arange(length)[:, None] + 0.125 * np.arange(dim)).astype(np.float32)
    return {k: coded_frames(length, episode) for k in cams} | {"observation.state": state, "action": state + 0.5}


def features_for(cams=CAMS, dim: int = 6, h: int = 48, w: int = 64) -> dict:
    names = [f"joint{i}" for i in range(dim)]
    feats = {
        "observation.state": {"dtype": "float32", "shape": [dim], "names": names},
        "action": {"dtype": "float32", "shape": [dim], "names": names},
    }
    return feats | {k: {"dtype": "video", "shape": [h, w, 3]} for k in cams}


def write_dataset(root: Path, lengths=(12, 10, 14), tasks=None, cams=CAMS, dim=6, video=None, **kw) -> Path:
    tasks = tasks or ["Pick up the cube.", "Put the red cube in the bowl.", "Pick up the cube."]
    writer = DatasetWriter.create(root, fps=30, features=features_for(cams, dim), robot_type="so100", video=video, **kw)
    for ep, n in enumerate(lengths):
        writer.add_episode(episode_arrays(n, ep, cams, dim), task=tasks[ep % len(tasks)])
    return root
