"""Create / extend a LeRobotDataset v3.0 on disk, in atomically committed batches of episodes.

    w = DatasetWriter.create(root, fps=30, features={
        "observation.images.top": {"dtype": "video", "shape": [480, 640, 3]},     # one mp4 stream per camera
        "observation.images.wrist": {"dtype": "image", "shape": [480, 640, 3]},   # PNG inside the data parquet
        "observation.state": {"dtype": "float32", "shape": [6], "names": [...]},
        "action": {"dtype": "float32", "shape": [6]},
    })
    w.add_episode({"observation.images.top": uint8[T, H, W, 3], "observation.images.wrist": uint8[T, H, W, 3],
                   "observation.state": float32[T, 6],
                   "action": float32[T, 6]}, task="Pick up the cube.")     # -> episode index
    w.add_episodes([(frames_a, "Pick up the cube."), (frames_b, tasks_per_frame_b)])   # -> [indices]
    w.close()                        # or `with DatasetWriter.create(...) as w:`: one writer per dataset (lock.py)
    w = DatasetWriter.resume(root)   # later: finishes/discards an interrupted save, then appends

Layout, file rollover (data / each camera / episodes metadata independently, `chunks_size` files per
chunk dir), per-episode and dataset stats follow LeRobot 0.6.1 (see /work/shared spec and stats.py).
Each `add_episodes` call (`add_episode` is a batch of one) is one transaction (commit.py): an interruption
leaves the dataset exactly as it was after the previous call. Every file a batch touches (the current data,
mp4 and episodes files, tasks, stats, info) is rewritten once per batch, mp4s by stream copy: saving N episodes
in batches of B copies the current files about N / B times instead of N times.

Rollover is decided episode by episode, also inside a batch, so a batch writes exactly the files that
one-episode calls would. For that, file sizes are counted in units that add up over episodes and so are
known before a batch writes anything (tables.py, encode.video_payload_bytes): data parquet and mp4 files by
their payload (column chunks, video packets: the file less the container's headers and index), episodes files
by their rows' Arrow sizes. A new file is started for
    data:              when size + size / rows * T >= data_files_size_in_mb   (T: the episode's frames),
    each camera:       when size + the episode's packet bytes >= video_files_size_in_mb,
    episodes metadata: when size >= data_files_size_in_mb.
`image` cameras are PNG-encoded (Pillow, compress_level 6 as LeRobot) into the data parquet as HF Image
structs (images.py), so for them the data file, not an mp4, grows by the episode's PNG bytes; camera
stats of both kinds come from the given frames, before any encoding (as LeRobot).
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from smolvla.data.commit import Transaction, recover
from smolvla.data.encode import VideoEncoding, concat_videos, encode_video, probe_video_info, video_payload_bytes
from smolvla.data.layout import DATA_PATH, EPISODES_PATH, VIDEO_PATH, Cursor, check_layout, read_cursors
from smolvla.data.lock import DatasetLock
from smolvla.data.meta import (
    DEFAULT_FEATURES,
    TEXT_DTYPES,
    load_meta,
    read_json,
    validate_info,
)
from smolvla.data.stats import aggregate_stats, compute_episode_stats, stats_to_json
from smolvla.data.tables import (
    episode_row,
    episode_row_table,
    frames_table,
    table_payload_bytes,
    write_episode_rows,
    write_row_groups,
    write_tasks,
)
from smolvla.data.video import close_readers

logger = logging.getLogger(__name__)

MB = 1024**2
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
        elif dtype in TEXT_DTYPES:
            raise ValueError(f"feature {key!r}: dtype {dtype!r} is not supported by this writer")
        else:
            np.dtype(dtype)  # raises TypeError for unknown names
            out[key] = {"dtype": dtype, "shape": list(shape), "names": feat.get("names")}
    for key, dtype in _DEFAULT_SPECS.items():
        out[key] = {"dtype": dtype, "shape": [1], "names": None}
    return out


def _write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=4))
    os.replace(tmp, path)


@dataclass
class _Update:
    """The new version of one file: the on-disk file it extends (None: a new file), the rows/frames that holds,
    and the batch's parts in order: one-row-group tables (data), one-row tables (episodes), (mp4, frames) (video).
    """

    existing: Path | None
    held: int
    parts: list = field(default_factory=list)


@dataclass
class _Prepared:
    """One validated episode of a batch. columns: feature -> [T, ...] arrays plus the default columns."""

    ep: int
    start: int
    length: int
    columns: dict[str, np.ndarray]
    stats: dict[str, dict[str, np.ndarray]]
    tasks: list[str]


def _route(updates: dict[str, _Update], root: Path, rel: str, at: Cursor, part) -> None:
    """Append `part` to the new version of file `rel`, placed at cursor `at` (at.units > 0: the file exists)."""
    if rel not in updates:  # first part of this file in the batch: it extends the file on disk, if any
        updates[rel] = _Update(root / rel if at.units else None, at.units)
    updates[rel].parts.append(part)


class DatasetWriter:
    """Appends episodes to a v3.0 dataset; build with `create(...)` or `resume(root)`.

    A writer holds the dataset's lock (lock.py) until `close()` (or `with DatasetWriter.resume(root) as w:`, or
    the end of its process): a second writer on the same dataset fails at once with DatasetLockedError.
    """

    def __init__(self, root: Path, video: VideoEncoding, lock: DatasetLock, info: dict):
        self.root = Path(root)
        self.video = video
        self._lock = lock
        self.info = info
        self.features: dict = self.info["features"]
        self.video_keys = [k for k, f in self.features.items() if f["dtype"] == "video"]
        self.image_keys = [k for k, f in self.features.items() if f["dtype"] == "image"]  # PNG inside the parquet
        self.camera_keys = self.video_keys + self.image_keys
        self.tasks: list[str] = []
        self.stats: dict = {}
        self._data, self._meta = Cursor(), Cursor()
        self._videos = {k: Cursor() for k in self.video_keys}
        if self.info["total_episodes"] > 0:
            meta = load_meta(self.root)
            self.tasks = list(meta.tasks)
            self.stats = meta.stats
            self._data, self._meta, self._videos = read_cursors(self.root, self.info)

    def close(self) -> None:
        """Release the dataset (every saved batch is already committed; the writer cannot save after this)."""
        self._lock.release()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

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
        if not isinstance(fps, int) or fps <= 0:
            raise ValueError(f"fps must be a positive int, got {fps!r}")
        feats = _validate_features(features)
        exists = FileExistsError(f"{root} already holds a dataset; use DatasetWriter.resume({str(root)!r})")
        if (root / "meta" / "info.json").exists():
            raise exists
        root.mkdir(parents=True, exist_ok=True)
        lock = DatasetLock(root)
        if (root / "meta" / "info.json").exists():  # created by a writer that held the lock until just now
            lock.release()
            raise exists
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
        return cls(root, video or VideoEncoding(), lock, info)

    @classmethod
    def resume(cls, root: str | Path, video: VideoEncoding | None = None) -> DatasetWriter:
        """Reopen a v3.0 dataset for appending (completing or discarding an interrupted save first).

        Damaged metadata or files raise errors naming the file (DatasetFormatError, a ValueError); a dataset
        another writer holds raises DatasetLockedError before anything is touched.
        """
        root = Path(root)
        lock = DatasetLock(root)  # before recover(): the staged transaction may be another live writer's
        try:
            recover(root)
            info_path = root / "meta" / "info.json"
            info = read_json(info_path)
            validate_info(info, info_path)
            if info["codebase_version"] != "v3.0":
                raise ValueError(f"{root}: can only append to v3.0 datasets, got {info['codebase_version']!r}")
            check_layout(info, info_path)
            return cls(root, video or VideoEncoding(), lock, info)
        except BaseException:
            lock.release()
            raise

    # -- input checks ----------------------------------------------------------------------------------------
    def _check_frames(self, frames: Mapping[str, np.ndarray]) -> int:
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

    @staticmethod
    def _task_indices(task: str | Sequence[str], length: int, tasks: list[str]) -> tuple[np.ndarray, list[str]]:
        """int64[T] task index per frame (new tasks are appended to `tasks`) and the episode's distinct tasks."""
        per_frame = [task] * length if isinstance(task, str) else list(task)
        if len(per_frame) != length or not all(isinstance(t, str) for t in per_frame):
            raise ValueError(f"task must be a str or a list of {length} str (one per frame)")
        for t in per_frame:
            if t not in tasks:
                tasks.append(t)
        return np.array([tasks.index(t) for t in per_frame], dtype=np.int64), list(dict.fromkeys(per_frame))

    def _prepare(self, items: list) -> tuple[list[_Prepared], list[str]]:
        """Validate every episode of a batch (nothing is encoded yet); returns them and the task list after them."""
        tasks = list(self.tasks)
        ep, start, fps = self.info["total_episodes"], self.info["total_frames"], self.info["fps"]
        out = []
        for i, item in enumerate(items):
            try:
                if not (isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], Mapping)):
                    raise ValueError(f"expected a (frames dict, task) pair, got {type(item).__name__}")
                frames, task = item
                length = self._check_frames(frames)
                task_index, ep_tasks = self._task_indices(task, length, tasks)
            except ValueError as e:
                raise ValueError(f"episode {ep} (batch item {i}): {e}") from e
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
            stats = compute_episode_stats(columns, tuple(self.camera_keys))
            out.append(_Prepared(ep, start, length, columns, stats, ep_tasks))
            ep, start = ep + 1, start + length
        return out, tasks

    # -- saving ------------------------------------------------------------------------------------------------
    def add_episode(self, frames: dict[str, np.ndarray], task: str | Sequence[str]) -> int:
        """Save one episode (all keys of `frames` are [T, ...] arrays) and return its episode_index."""
        return self.add_episodes([(frames, task)])[0]

    def add_episodes(self, episodes: Sequence[tuple[dict[str, np.ndarray], str | Sequence[str]]]) -> list[int]:
        """Save (frames, task) episodes in one transaction; returns their (consecutive) episode indices.

        The dataset becomes exactly what `add_episode` on each in turn would make, with each touched file
        rewritten once. Every episode is validated before anything is encoded (a ValueError names the episode
        and its position in the batch); if any step fails, nothing of the batch is saved. An empty batch saves
        nothing and returns [].
        """
        if not self._lock.held:
            raise RuntimeError(f"{self.root}: this DatasetWriter was closed; reopen it with DatasetWriter.resume(root)")
        items = list(episodes)
        if not items:
            return []
        prepared, tasks = self._prepare(items)
        txn = Transaction(self.root, f"episodes-{prepared[0].ep:06d}-{prepared[-1].ep:06d}")
        try:
            info, stats, cursors = self._stage(txn, prepared, tasks)
        except BaseException:
            txn.abort()
            raise
        close_readers()  # this process may hold the previous version of a file being replaced
        txn.commit()
        self.info, self.features, self.tasks, self.stats = info, info["features"], tasks, stats
        self._data, self._meta, self._videos = cursors
        logger.debug("%s: saved episodes %d..%d", self.root, prepared[0].ep, prepared[-1].ep)
        return [p.ep for p in prepared]

    def _stage(self, txn: Transaction, prepared: list[_Prepared], tasks: list[str]):
        """Place the episodes one by one, then stage every touched file once; returns the state after the batch."""
        info = copy.deepcopy(self.info)  # a failed batch must leave self.info (and its video `info` blocks) as is
        stats, data, meta, videos = self.stats, self._data, self._meta, dict(self._videos)
        files: dict[str, dict[str, _Update]] = {"data": {}, "meta": {}} | {k: {} for k in self.video_keys}
        for p in prepared:
            row, data = self._place_data(p, data, files["data"])
            for key in self.video_keys:
                fields, videos[key] = self._place_video(txn, key, p, videos[key], files[key], info)
                row |= fields
            meta = self._place_meta(row, p, meta, files["meta"])
            stats = p.stats if not stats else aggregate_stats([stats, p.stats])
        for rel, update in files["data"].items():
            write_row_groups(txn.path(rel), update.existing, update.parts)
        for rel, update in files["meta"].items():
            write_episode_rows(txn.path(rel), update.existing, update.parts)
        for key in self.video_keys:
            for rel, update in files[key].items():
                if update.existing is None and len(update.parts) == 1:
                    os.replace(update.parts[0][0], txn.path(rel))
                else:
                    head = [(update.existing, update.held)] if update.existing is not None else []
                    concat_videos(head + update.parts, txn.path(rel), info["fps"])
        write_tasks(txn.path("meta/tasks.parquet"), tasks)
        txn.path("meta/stats.json").write_text(json.dumps(stats_to_json(stats), indent=4))
        last = prepared[-1]
        total_episodes, total_frames = last.ep + 1, last.start + last.length
        info |= {"total_episodes": total_episodes, "total_frames": total_frames, "total_tasks": len(tasks)}
        info["splits"] = {"train": f"0:{total_episodes}"}
        txn.path("meta/info.json").write_text(json.dumps(info, indent=4))
        return info, stats, (data, meta, videos)

    def _place_data(self, p: _Prepared, cur: Cursor, updates: dict[str, _Update]) -> tuple[dict, Cursor]:
        """Route the episode's frame rows to a data file; returns its bookkeeping row and the advanced cursor."""
        limit = self.info["data_files_size_in_mb"] * MB
        roll = bool(cur.units) and cur.nbytes + cur.nbytes / cur.units * p.length >= limit
        cur = cur.place(roll, self.info["chunks_size"])
        table = frames_table(dict(p.columns, timestamp=p.columns["timestamp"].astype(np.float32)), self.features)
        _route(updates, self.root, DATA_PATH.format(chunk_index=cur.chunk, file_index=cur.file), cur, table)
        row = {"episode_index": p.ep, "tasks": p.tasks, "length": p.length}  # column order of LeRobot's rows
        row |= {"data/chunk_index": cur.chunk, "data/file_index": cur.file}
        row |= {"dataset_from_index": p.start, "dataset_to_index": p.start + p.length}
        return row, cur.plus(p.length, table_payload_bytes(table))

    def _place_video(
        self, txn: Transaction, key: str, p: _Prepared, cur: Cursor, updates: dict[str, _Update], info: dict
    ) -> tuple[dict, Cursor]:
        """Encode camera `key` of the episode and route it to an mp4; returns its row fields and the cursor."""
        fps = info["fps"]
        tmp = txn.scratch(f"{key}/episode-{p.ep:06d}.mp4")
        encode_video(p.columns[key], tmp, fps, self.video)
        if "info" not in info["features"][key]:
            info["features"][key]["info"] = probe_video_info(tmp, self.video, fps)
        new_bytes = video_payload_bytes(tmp, p.length)
        cur = cur.place(cur.nbytes + new_bytes >= info["video_files_size_in_mb"] * MB, info["chunks_size"])
        rel = VIDEO_PATH.format(video_key=key, chunk_index=cur.chunk, file_index=cur.file)
        _route(updates, self.root, rel, cur, (tmp, p.length))
        fields = {f"videos/{key}/chunk_index": cur.chunk, f"videos/{key}/file_index": cur.file}
        fields |= {
            f"videos/{key}/from_timestamp": cur.units / fps,
            f"videos/{key}/to_timestamp": (cur.units + p.length) / fps,
        }
        return fields, cur.plus(p.length, new_bytes)

    def _place_meta(self, row: dict, p: _Prepared, cur: Cursor, updates: dict[str, _Update]) -> Cursor:
        """Route the episode's metadata row (bookkeeping + per-episode stats) to an episodes file."""
        cur = cur.place(cur.nbytes >= self.info["data_files_size_in_mb"] * MB, self.info["chunks_size"])
        table = episode_row_table(episode_row(row, p.stats, cur.chunk, cur.file))
        _route(updates, self.root, EPISODES_PATH.format(chunk_index=cur.chunk, file_index=cur.file), cur, table)
        return cur.plus(1, table.nbytes)
