"""Dataset metadata: info.json, tasks, episodes and stats of a LeRobotDataset (v3.0, v2.1, v2.0).

`load_meta(root)` validates what it reads and returns a `DatasetMeta` that hides the version differences:
episodes are always a column table (`numpy` arrays, one row per episode, row == episode_index) with
`length`, `dataset_from_index`, `dataset_to_index`, the data file and, per camera, the video file and the
`from_timestamp` offset of the episode inside it (0 for v2.x, one mp4 per episode). Cameras are `video`
features (mp4 files) or `image` features (PNG bytes inside the data parquet, no file of their own).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

SUPPORTED_VERSIONS = ("v2.0", "v2.1", "v3.0")
DEFAULT_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")
CAMERA_DTYPES = ("video", "image")
INFO_REQUIRED = ("codebase_version", "fps", "features", "total_episodes", "total_frames", "data_path")


class DatasetFormatError(ValueError):
    """A dataset on disk does not follow the LeRobotDataset format (message names the file/episode)."""


def read_json(path: Path) -> Any:
    """Parse a JSON file, turning a missing or malformed file into an error naming it."""
    if not path.is_file():
        raise FileNotFoundError(f"missing dataset file {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetFormatError(f"{path}: not valid JSON ({e})") from e


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"missing dataset file {path}")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DatasetFormatError(f"{path}:{n}: not valid JSON ({e})") from e
    return rows


def read_parquet(path: Path):
    """Read a parquet file (pyarrow Table); missing or corrupt files raise errors naming the path."""
    if not path.is_file():
        raise FileNotFoundError(f"missing dataset file {path}")
    try:
        return pq.read_table(path)
    except Exception as e:  # pyarrow raises several unrelated types for damaged files
        raise DatasetFormatError(f"{path}: cannot read parquet ({type(e).__name__}: {e})") from e


def column_to_numpy(table, name: str, path: Path) -> np.ndarray:
    """Turn a parquet column into numpy: scalars -> [N], (fixed_size_)list -> [N, D] (ragged lists refused)."""
    col = table.column(name).combine_chunks()
    import pyarrow as pa

    if pa.types.is_fixed_size_list(col.type) or pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        n = len(col)
        values = col.flatten().to_numpy(zero_copy_only=False)
        if n == 0:
            return values.reshape(0, 0)
        if values.size % n:
            raise DatasetFormatError(f"{path}: column {name!r} has lists of unequal length")
        out = values.reshape(n, values.size // n)
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
            lengths = np.diff(col.offsets.to_numpy())
            if not np.all(lengths == out.shape[1]):
                raise DatasetFormatError(f"{path}: column {name!r} has lists of unequal length")
        return out
    return col.to_numpy(zero_copy_only=False)


@dataclass
class DatasetMeta:
    """Everything about a dataset except the frames: validated info, tasks, episodes and stats.

    episodes: column name -> array[num_episodes]; always has `episode_index`, `length`,
    `dataset_from_index`, `dataset_to_index`, `data_path` (str, relative to root) and, per camera key K,
    `videos/K/path` (str) and `videos/K/from_timestamp` (float64).
    """

    root: Path
    info: dict
    tasks: list[str]
    episodes: dict[str, np.ndarray]
    stats: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.info["codebase_version"]

    @property
    def fps(self) -> int:
        return self.info["fps"]

    @property
    def features(self) -> dict[str, dict]:
        return self.info["features"]

    @property
    def camera_keys(self) -> list[str]:
        return [k for k, f in self.features.items() if f["dtype"] in CAMERA_DTYPES]

    @property
    def video_keys(self) -> list[str]:
        """Cameras stored as mp4 streams."""
        return [k for k, f in self.features.items() if f["dtype"] == "video"]

    @property
    def image_keys(self) -> list[str]:
        """Cameras stored as PNG inside the data parquet (see images.py)."""
        return [k for k, f in self.features.items() if f["dtype"] == "image"]

    @property
    def total_episodes(self) -> int:
        return int(self.info["total_episodes"])

    @property
    def total_frames(self) -> int:
        return int(self.info["total_frames"])


def validate_info(info: dict, path: Path) -> None:
    """Check the keys and feature specs of info.json; raise naming the file and the offending key."""
    version = info.get("codebase_version")
    if version not in SUPPORTED_VERSIONS:
        raise DatasetFormatError(
            f"{path}: unknown codebase_version {version!r}; expected one of {list(SUPPORTED_VERSIONS)}"
        )
    missing = [k for k in INFO_REQUIRED if k not in info]
    if missing:
        raise DatasetFormatError(f"{path}: missing keys {missing}")
    for key, feat in info["features"].items():
        for attr in ("dtype", "shape"):
            if attr not in feat:
                raise DatasetFormatError(f"{path}: feature {key!r} has no {attr!r}")
    absent = [k for k in DEFAULT_FEATURES if k not in info["features"]]
    if absent:
        raise DatasetFormatError(f"{path}: default features {absent} missing from 'features'")
    # video_path may be null or absent (older image-only datasets); it is only needed for video features
    if info.get("video_path") is None and any(f["dtype"] == "video" for f in info["features"].values()):
        raise DatasetFormatError(f"{path}: video features declared but video_path is null")
    info["fps"] = int(round(float(info["fps"])))


def _stats_from_json(raw: dict) -> dict[str, dict[str, np.ndarray]]:
    return {key: {s: np.asarray(v) for s, v in stats.items()} for key, stats in raw.items()}


def _load_tasks_v3(root: Path) -> list[str]:
    path = root / "meta" / "tasks.parquet"
    table = read_parquet(path)
    if "task" not in table.column_names or "task_index" not in table.column_names:
        raise DatasetFormatError(f"{path}: expected columns 'task' and 'task_index', got {table.column_names}")
    idx = table.column("task_index").to_numpy()
    tasks = table.column("task").to_pylist()
    if not np.array_equal(idx, np.arange(len(idx))):
        raise DatasetFormatError(f"{path}: task_index must be 0..{len(idx) - 1} in order, got {idx.tolist()}")
    return tasks


def _load_episodes_v3(root: Path, info: dict) -> dict[str, np.ndarray]:
    files = sorted((root / "meta" / "episodes").glob("*/*.parquet"))
    if not files:
        raise FileNotFoundError(f"missing dataset files {root / 'meta' / 'episodes'}/chunk-*/file-*.parquet")
    cols: dict[str, list[np.ndarray]] = {}
    for path in files:
        table = read_parquet(path)
        for name in table.column_names:
            if name.startswith("stats/") or name == "tasks":
                continue  # per-episode stats are only needed by the stats tools, which read them directly
            cols.setdefault(name, []).append(column_to_numpy(table, name, path))
    eps = {k: np.concatenate(v) for k, v in cols.items()}
    need = ["episode_index", "length", "dataset_from_index", "dataset_to_index", "data/chunk_index", "data/file_index"]
    for key in [k for k, f in info["features"].items() if f["dtype"] == "video"]:
        need += [f"videos/{key}/{c}" for c in ("chunk_index", "file_index", "from_timestamp")]
    missing = [c for c in need if c not in eps]
    if missing:
        raise DatasetFormatError(f"{root / 'meta' / 'episodes'}: missing columns {missing}")
    eps["data_path"] = np.array(
        [
            info["data_path"].format(chunk_index=int(c), file_index=int(f))
            for c, f in zip(eps["data/chunk_index"], eps["data/file_index"], strict=True)
        ]
    )
    for key in [k for k, f in info["features"].items() if f["dtype"] == "video"]:
        chunks, fidx = eps[f"videos/{key}/chunk_index"], eps[f"videos/{key}/file_index"]
        eps[f"videos/{key}/path"] = np.array(
            [
                info["video_path"].format(video_key=key, chunk_index=int(c), file_index=int(f))
                for c, f in zip(chunks, fidx, strict=True)
            ]
        )
        eps[f"videos/{key}/from_timestamp"] = eps[f"videos/{key}/from_timestamp"].astype(np.float64)
    return eps


def _load_v2(root: Path, info: dict) -> tuple[list[str], dict[str, np.ndarray], dict]:
    task_rows = read_jsonl(root / "meta" / "tasks.jsonl")
    tasks = [r["task"] for r in sorted(task_rows, key=lambda r: r["task_index"])]
    ep_rows = sorted(read_jsonl(root / "meta" / "episodes.jsonl"), key=lambda r: r["episode_index"])
    ep_index = np.array([r["episode_index"] for r in ep_rows], dtype=np.int64)
    length = np.array([r["length"] for r in ep_rows], dtype=np.int64)
    to_index = np.cumsum(length)
    chunks_size = int(info.get("chunks_size", 1000))
    eps: dict[str, np.ndarray] = {
        "episode_index": ep_index,
        "length": length,
        "dataset_from_index": to_index - length,
        "dataset_to_index": to_index,
        "data_path": np.array(
            [info["data_path"].format(episode_chunk=int(e) // chunks_size, episode_index=int(e)) for e in ep_index]
        ),
    }
    for key in [k for k, f in info["features"].items() if f["dtype"] == "video"]:
        eps[f"videos/{key}/path"] = np.array(
            [
                info["video_path"].format(video_key=key, episode_chunk=int(e) // chunks_size, episode_index=int(e))
                for e in ep_index
            ]
        )
        eps[f"videos/{key}/from_timestamp"] = np.zeros(len(ep_index), dtype=np.float64)
    if info["codebase_version"] == "v2.0" or not (root / "meta" / "episodes_stats.jsonl").is_file():
        stats_path = root / "meta" / "stats.json"
        stats = _stats_from_json(read_json(stats_path)) if stats_path.is_file() else {}
    else:
        from smolvla.data.stats import aggregate_stats

        per_ep = read_jsonl(root / "meta" / "episodes_stats.jsonl")
        stats = aggregate_stats([_stats_from_json(r["stats"]) for r in per_ep])
    return tasks, eps, stats


def _check_episodes(meta: DatasetMeta) -> None:
    eps, n = meta.episodes, meta.total_episodes
    where = meta.root / "meta"
    if len(eps["episode_index"]) != n:
        raise DatasetFormatError(
            f"{where / 'info.json'}: total_episodes={n} but episode metadata has {len(eps['episode_index'])} rows"
        )
    if not np.array_equal(eps["episode_index"], np.arange(n)):
        raise DatasetFormatError(f"{where}: episode_index must be 0..{n - 1} in order")
    bad = np.nonzero(eps["dataset_to_index"] - eps["dataset_from_index"] != eps["length"])[0]
    if bad.size:
        raise DatasetFormatError(f"{where}: episode {int(bad[0])}: dataset_to_index - dataset_from_index != length")
    total = int(eps["length"].sum())
    if total != meta.total_frames:
        raise DatasetFormatError(
            f"{where / 'info.json'}: total_frames={meta.total_frames} but episodes sum to {total} frames"
        )
    if len(meta.tasks) != int(meta.info.get("total_tasks", len(meta.tasks))):
        raise DatasetFormatError(
            f"{where / 'info.json'}: total_tasks={meta.info['total_tasks']} but {len(meta.tasks)} tasks are stored"
        )


def check_no_pending_write(root: Path) -> None:
    """Refuse to read a dataset whose last episode commit was interrupted half-way (see writer.py)."""
    staging = root / ".staging"
    pending = sorted(p.parent.name for p in staging.glob("*/COMMIT")) if staging.is_dir() else []
    if pending:
        raise DatasetFormatError(
            f"{root}: interrupted write of {pending} must be completed first: open it with DatasetWriter.resume(root)"
        )


def load_meta(root: str | Path) -> DatasetMeta:
    """Read and validate the metadata of the dataset at `root` (v3.0, v2.1 or v2.0)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} does not exist")
    check_no_pending_write(root)
    info_path = root / "meta" / "info.json"
    info = read_json(info_path)
    validate_info(info, info_path)
    if info["codebase_version"] == "v3.0":
        tasks = _load_tasks_v3(root)
        episodes = _load_episodes_v3(root, info)
        stats_path = root / "meta" / "stats.json"
        stats = _stats_from_json(read_json(stats_path)) if stats_path.is_file() else {}
    else:
        tasks, episodes, stats = _load_v2(root, info)
    meta = DatasetMeta(root=root, info=info, tasks=tasks, episodes=episodes, stats=stats)
    _check_episodes(meta)
    return meta
