"""`smolvla replay`: send the recorded actions of one dataset episode to a follower arm, at the dataset's fps.

Reads the v3.0 data parquet files with pyarrow alone (no torch, no video decoding: only the action column
is needed). The dataset's action names ("shoulder_pan.pos", ...) say which joint each column drives.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from smolvla.robots.loop_rate import LoopClock

POS_SUFFIX = ".pos"


def episode_actions(root: str | Path, episode: int) -> tuple[int, tuple[str, ...], np.ndarray]:
    """(fps, joint names, float32[T, n] actions in frame order) of `episode` of the dataset at `root`."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    root = Path(root)
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"{root} is not a LeRobot dataset: no meta/info.json")
    info = json.loads(info_path.read_text())
    feature = info.get("features", {}).get("action")
    if info.get("codebase_version") != "v3.0" or not feature or not feature.get("names"):
        raise ValueError(f"{info_path}: replay needs a v3.0 dataset whose 'action' feature has joint names")
    joints = tuple(str(n).removesuffix(POS_SUFFIX) for n in feature["names"])
    parts = []
    for path in sorted((root / "data").glob("chunk-*/file-*.parquet")):
        table = pq.read_table(path, columns=["episode_index", "frame_index", "action"])
        parts.append(table.filter(pc.equal(table["episode_index"], episode)))
    rows = sum(p.num_rows for p in parts)
    if rows == 0:
        raise ValueError(f"{root}: no frames of episode {episode} (the dataset has {info['total_episodes']} episodes)")
    order = np.concatenate([p["frame_index"].to_numpy() for p in parts]).argsort()
    actions = np.concatenate([np.stack(p["action"].to_numpy(zero_copy_only=False)) for p in parts if p.num_rows])
    return int(info["fps"]), joints, actions[order].astype(np.float32)


def replay(
    arm: Any, joints: tuple[str, ...], actions: np.ndarray, fps: float, stop: Callable[[], bool] = lambda: False
) -> dict:
    """Send each action row as one goal per tick at `fps`; returns the loop rate held (LoopClock.summary)."""
    missing = sorted(set(joints) - set(arm.joint_names))
    if missing:
        raise ValueError(f"the dataset's actions name joints {missing} that {arm} does not have")
    clock = LoopClock(fps)
    for row in actions:
        if stop():
            break
        arm.send_goal(dict(zip(joints, row.tolist(), strict=True)))
        clock.wait()
    return clock.summary()
