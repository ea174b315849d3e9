"""Create / extend a LeRobotDataset v3.0 on disk, one atomically committed episode at a time.

    w = DatasetWriter.create(root, fps=30, features={
        "observation.images.top": {"dtype": "video", "shape": [480, 640, 3]},     # one mp4 stream per camera
        "observation.images.wrist": {"dtype": "image", "shape": [480, 640, 3]},   # PNG inside the data parquet
        "observation.state": {"dtype": "float32", "shape": [6], "names": [...]},
        "action": {"dtype": "float32", "shape": [6]},
    })
    w.add_episode({"observation.images.top": uint8[T, H, W, 3], "observation.images.wrist": uint8[T, H, W, 3],
                   "observation.state": float32[T, 6],
                   "action": float32[T, 6]}, task="Pick up the cube.")     # -> episode index
    w = DatasetWriter.resume(root)   # later: finishes/discards an interrupted save, then appends

Layout, file rollover (data / each camera / episodes metadata independently, `chunks_size` files per
chunk dir), per-episode and dataset stats follow LeRobot 0.6.1 (see /work/shared spec and stats.py).
Each `add_episode` is one transaction (commit.py): an interruption leaves the dataset exactly as it was
after the previous episode. Cost: the current data parquet and mp4 are rewritten (stream copy, no
re-encode) on every episode, i.e. O(file size) per episode, bounded by the file size limits.
`image` cameras are PNG-encoded (Pillow, compress_level 6 as LeRobot) into the data parquet as HF Image
structs (images.py), so for them the data file, not an mp4, grows by the episode's PNG bytes; camera
stats of both kinds come from the given frames, before any encoding (as LeRobot).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from smolvla.data.commit import Transaction, recover
from smolvla.data.encode import VideoEncoding, concat_videos, encode_video, probe_video_info
from smolvla.data.meta import DEFAULT_FEATURES, load_meta, read_json
from smolvla.data.stats import aggregate_stats, compute_episode_stats, stats_to_json
from smolvla.data.tables import episode_row, frames_table, write_episode_rows, write_row_groups, write_tasks
from smolvla.data.video import close_readers

logger = logging.getLogger(__name__)

MB = 1024**2
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
_DEFAULT_SPECS = {
    "timestamp": "float32",
    "frame_index": "int64",
    "episode_index": "int64",
    "index": "int64",
    "task_index": "int64",
}


def _validate_features(features: dict) -> dict:
    out = {}
    for key, feat in features.items():
        if key in DEFAULT_FEATURES:
            raise ValueError(f"feature {key!r} is added by the writer; do not declare it")
        dtype, shape = feat.get("dtype"), feat.get("shape")
        if dtype is None or shape is None:
            raise ValueError(f"feature {key!r} needs 'dtype' and 'shape', got {feat}")
        if dtype in ("video", "image"):
            if len(shape) != 3 or shape[2] != 3:
                raise ValueError(f"{dtype} feature {key!r} must have shape [H, W, 3], got {shape}")
            out[key] = {"dtype": dtype, "shape": list(shape), "names": ["height", "width", "channels"]}
        elif dtype in ("string", "language"):
            raise ValueError(f"feature {key!r}: dtype {dtype!r} is not supported by this writer")
        else:
            np.dtype(dtype)  # raises TypeError for unknown names
            out[key] = {"dtype": dtype, "shape": list(shape), "names": feat.get("names")}
    for key, dtype in _DEFAULT_SPECS.items():
        out[key] = {"dtype": dtype, "shape": [1], "names": None}
    return out


def _next_file(chunk: int, file: int, chunks_size: int) -> tuple[int, int]:
    return (chunk + 1, 0) if file + 1 >= chunks_size else (chunk, file + 1)


def _write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=4))
    os.replace(tmp, path)


class DatasetWriter:
    """Appends episodes to a v3.0 dataset; build with `create(...)` or `resume(root)`."""

    def __init__(self, root: Path, video: VideoEncoding):
        self.root = Path(root)
        self.video = video
        self.info: dict = read_json(self.root / "meta" / "info.json")
        self.features: dict = self.info["features"]
        self.video_keys = [k for k, f in self.features.items() if f["dtype"] == "video"]
        self.image_keys = [k for k, f in self.features.items() if f["dtype"] == "image"]  # PNG inside the parquet
        self.camera_keys = self.video_keys + self.image_keys
        self.tasks: list[str] = []
        self.stats: dict = {}
        self._last: dict | None = None  # bookkeeping row of the last saved episode
        if self.info["total_episodes"] > 0:
            meta = load_meta(self.root)
            self.tasks = list(meta.tasks)
            self.stats = meta.stats
            files = sorted((self.root / "meta" / "episodes").glob("*/*.parquet"))
            rows = pq.read_table(files[-1]).to_pylist()
            self._last = {k: v for k, v in rows[-1].items() if not k.startswith("stats/")}

    @classmethod
    def create(
        cls,
        root: str | Path,
        fps: int,
        features: dict[str, dict],
        robot_type: str | None = None,
        video: VideoEncoding | None = None,
        chunks_size: int = 1000,
        data_files_size_in_mb: float = 100,
        video_files_size_in_mb: float = 200,
    ) -> DatasetWriter:
        """Start a new, empty dataset at `root` (refused if one exists there)."""
        root = Path(root)
        if (root / "meta" / "info.json").exists():
            raise FileExistsError(f"{root} already holds a dataset; use DatasetWriter.resume({str(root)!r})")
        if not isinstance(fps, int) or fps <= 0:
            raise ValueError(f"fps must be a positive int, got {fps!r}")
        feats = _validate_features(features)
        info = {
            "codebase_version": "v3.0",
            "fps": fps,
            "features": feats,
            "total_episodes": 0,
            "total_frames": 0,
            "total_tasks": 0,
            "chunks_size": chunks_size,
            "data_files_size_in_mb": data_files_size_in_mb,
            "video_files_size_in_mb": video_files_size_in_mb,
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if any(f["dtype"] == "video" for f in feats.values()) else None,
            "robot_type": robot_type,
            "splits": {},
        }
        (root / "meta").mkdir(parents=True, exist_ok=True)
        _write_json_atomic(root / "meta" / "info.json", info)
        return cls(root, video or VideoEncoding())

    @classmethod
    def resume(cls, root: str | Path, video: VideoEncoding | None = None) -> DatasetWriter:
        """Reopen a dataset written by us for appending (completing or discarding an interrupted save)."""
        root = Path(root)
        recover(root)
        info = read_json(root / "meta" / "info.json")
        if info.get("codebase_version") != "v3.0":
            raise ValueError(f"{root}: can only append to v3.0 datasets, got {info.get('codebase_version')!r}")
        return cls(root, video or VideoEncoding())

    # -- input checks ----------------------------------------------------------------------------------------
    def _check_frames(self, frames: dict[str, np.ndarray]) -> int:
        user = [k for k in self.features if k not in DEFAULT_FEATURES]
        missing, extra = sorted(set(user) - set(frames)), sorted(set(frames) - set(user))
        if missing or extra:
            raise ValueError(f"episode frames: missing keys {missing}, unexpected keys {extra}; expected {user}")
        lengths = {k: len(v) for k, v in frames.items()}
        if len(set(lengths.values())) != 1 or 0 in lengths.values():
            raise ValueError(f"episode frames must all have the same non-zero length T, got {lengths}")
        for key, arr in frames.items():
            feat, arr = self.features[key], np.asarray(arr)
            shape = tuple(feat["shape"])
            want = (len(arr),) if shape == (1,) else (len(arr), *shape)
            if feat["dtype"] in ("video", "image"):
                if arr.dtype != np.uint8 or arr.shape != want:
                    raise ValueError(f"{key}: expected uint8{list(want)}, got {arr.dtype}{list(arr.shape)}")
            elif arr.shape != want:
                raise ValueError(f"{key}: expected shape {list(want)}, got {list(arr.shape)}")
            elif not np.can_cast(arr.dtype, feat["dtype"], casting="same_kind"):
                raise ValueError(f"{key}: cannot store {arr.dtype} values as {feat['dtype']}")
        return next(iter(lengths.values()))

    def _task_indices(self, task: str | Sequence[str], length: int) -> tuple[np.ndarray, list[str], list[str]]:
        per_frame = [task] * length if isinstance(task, str) else list(task)
        if len(per_frame) != length or not all(isinstance(t, str) for t in per_frame):
            raise ValueError(f"task must be a str or a list of {length} str (one per frame)")
        tasks = list(self.tasks)
        for t in per_frame:
            if t not in tasks:
                tasks.append(t)
        return np.array([tasks.index(t) for t in per_frame], dtype=np.int64), tasks, list(dict.fromkeys(per_frame))

    # -- file placement ----------------------------------------------------------------------------------------
    def _data_target(self, length: int) -> tuple[int, int, Path | None]:
        if self._last is None:
            return 0, 0, None
        chunk, file = self._last["data/chunk_index"], self._last["data/file_index"]
        path = self.root / DATA_PATH.format(chunk_index=chunk, file_index=file)
        size, rows = path.stat().st_size, pq.ParquetFile(path).metadata.num_rows
        if size + size / rows * length >= self.info["data_files_size_in_mb"] * MB:
            return *_next_file(chunk, file, self.info["chunks_size"]), None
        return chunk, file, path

    def _video_target(self, key: str, new_bytes: int) -> tuple[int, int, int]:
        """(chunk, file, frames already in that file) for camera `key`'s next episode."""
        if self._last is None:
            return 0, 0, 0
        chunk, file = self._last[f"videos/{key}/chunk_index"], self._last[f"videos/{key}/file_index"]
        path = self.root / VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)
        if path.stat().st_size + new_bytes >= self.info["video_files_size_in_mb"] * MB:
            return *_next_file(chunk, file, self.info["chunks_size"]), 0
        return chunk, file, int(round(self._last[f"videos/{key}/to_timestamp"] * self.info["fps"]))

    def _meta_target(self) -> tuple[int, int, Path | None]:
        if self._last is None:
            return 0, 0, None
        chunk, file = self._last["meta/episodes/chunk_index"], self._last["meta/episodes/file_index"]
        path = self.root / EPISODES_PATH.format(chunk_index=chunk, file_index=file)
        if path.stat().st_size >= self.info["data_files_size_in_mb"] * MB:
            return *_next_file(chunk, file, self.info["chunks_size"]), None
        return chunk, file, path

    # -- saving ------------------------------------------------------------------------------------------------
    def add_episode(self, frames: dict[str, np.ndarray], task: str | Sequence[str]) -> int:
        """Save one episode (all keys of `frames` are [T, ...] arrays) and return its episode_index."""
        length = self._check_frames(frames)
        task_index, tasks, ep_tasks = self._task_indices(task, length)
        ep, start, fps = self.info["total_episodes"], self.info["total_frames"], self.info["fps"]
        frame_index = np.arange(length, dtype=np.int64)
        columns = {  # in info.json feature order, which fixes the order of the stats columns
            k: np.asarray(frames[k], dtype=np.uint8 if k in self.camera_keys else self.features[k]["dtype"])
            for k in self.features
            if k in frames
        }
        # timestamp in float64 for the stats (as LeRobot's episode buffer), stored as float32
        columns |= {
            "timestamp": frame_index / fps,
            "frame_index": frame_index,
            "episode_index": np.full(length, ep, dtype=np.int64),
            "index": start + frame_index,
            "task_index": task_index,
        }
        ep_stats = compute_episode_stats(columns, tuple(self.camera_keys))
        txn = Transaction(self.root, f"episode-{ep:06d}")
        try:
            row = self._stage_episode(txn, ep, start, length, columns, ep_tasks)
            chunk, file, existing = self._meta_target()
            rel = EPISODES_PATH.format(chunk_index=chunk, file_index=file)
            write_episode_rows(txn.path(rel), existing, episode_row(row, ep_stats, chunk, file))
            write_tasks(txn.path("meta/tasks.parquet"), tasks)
            stats = ep_stats if not self.stats else aggregate_stats([self.stats, ep_stats])
            txn.path("meta/stats.json").write_text(json.dumps(stats_to_json(stats), indent=4))
            info = dict(self.info, total_episodes=ep + 1, total_frames=start + length, total_tasks=len(tasks))
            info["splits"] = {"train": f"0:{ep + 1}"}
            txn.path("meta/info.json").write_text(json.dumps(info, indent=4))
        except BaseException:
            txn.abort()
            raise
        close_readers()  # this process may hold the previous version of a file being replaced
        txn.commit()
        self.info, self.tasks, self.stats = info, tasks, stats
        self._last = {**row, "meta/episodes/chunk_index": chunk, "meta/episodes/file_index": file}
        return ep

    def _stage_episode(self, txn: Transaction, ep: int, start: int, length: int, columns: dict, ep_tasks) -> dict:
        """Stage the data rows and the videos of one episode; returns its bookkeeping row."""
        fps = self.info["fps"]
        chunk, file, existing = self._data_target(length)
        stored = dict(columns, timestamp=columns["timestamp"].astype(np.float32))
        write_row_groups(
            txn.path(DATA_PATH.format(chunk_index=chunk, file_index=file)),
            existing,
            frames_table(stored, self.features),
        )
        row = {
            "episode_index": ep,
            "tasks": ep_tasks,
            "length": length,
            "data/chunk_index": chunk,
            "data/file_index": file,
            "dataset_from_index": start,
            "dataset_to_index": start + length,
        }
        for key in self.video_keys:
            tmp = txn.scratch(f"{key}.mp4")
            encode_video(columns[key], tmp, fps, self.video)
            if "info" not in self.features[key]:
                self.info["features"][key]["info"] = probe_video_info(tmp, self.video, fps)
            v_chunk, v_file, before = self._video_target(key, tmp.stat().st_size)
            rel = VIDEO_PATH.format(video_key=key, chunk_index=v_chunk, file_index=v_file)
            if before:
                concat_videos([(self.root / rel, before), (tmp, length)], txn.path(rel), fps)
            else:
                os.replace(tmp, txn.path(rel))
            row |= {
                f"videos/{key}/chunk_index": v_chunk,
                f"videos/{key}/file_index": v_file,
                f"videos/{key}/from_timestamp": before / fps,
                f"videos/{key}/to_timestamp": (before + length) / fps,
            }
        return row
