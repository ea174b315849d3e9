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

from smolvla.data.paths import confine

logger = logging.getLogger(__name__)

SUPPORTED_VERSIONS = ("v2.0", "v2.1", "v3.0")
DEFAULT_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")
CAMERA_DTYPES = ("video", "image")
TEXT_DTYPES = ("string", "language")
INFO_REQUIRED = ("codebase_version", "fps", "features", "total_episodes", "total_frames", "data_path")


class DatasetFormatError(ValueError):
    """A dataset on disk does not follow the LeRobotDataset format (message names the file/episode)."""


def read_json(path: Path, what: str = "dataset file") -> Any:
    """Parse a JSON file, turning a missing or malformed file into an error naming it; `what` the file is
    (e.g. "checkpoint file") is said when it is missing. The one JSON reader of datasets and checkpoints."""
    if not path.is_file():
        raise FileNotFoundError(f"missing {what} {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetFormatError(f"{path}: not valid JSON ({e})") from e


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"missing dataset file {path}")
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError as e:
        raise DatasetFormatError(f"{path}: not UTF-8 text ({e})") from e
    rows = []
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DatasetFormatError(f"{path}:{n}: not valid JSON ({e})") from e
    return rows


def rows_with(path: Path, rows: list, keys: tuple[str, ...], ints: tuple[str, ...] = ()) -> list[dict]:
    """JSON-lines rows, each an object holding `keys` (those in `ints`: non-negative integers); else an error
    naming the file, the row and what is wrong."""
    for n, row in enumerate(rows, 1):
        missing = [k for k in keys if k not in row] if isinstance(row, dict) else list(keys)
        if missing:
            raise DatasetFormatError(f"{path}: row {n} should be an object with keys {list(keys)}, lacks {missing}")
        for k in ints:
            if not (_is_int(row[k]) and row[k] >= 0):
                raise DatasetFormatError(f"{path}: row {n}: {k!r} must be a non-negative integer, got {row[k]!r}")
    return rows


def read_parquet(path: Path):
    """Read a parquet file (pyarrow Table); missing or corrupt files raise errors naming the path."""
    if not path.is_file():
        raise FileNotFoundError(f"missing dataset file {path}")
    try:
        return pq.read_table(path)
    except Exception as e:  # pyarrow raises several unrelated types for damaged files
        raise DatasetFormatError(f"{path}: cannot read parquet ({type(e).__name__}: {e})") from e


def read_parquet_metadata(path: Path) -> pq.FileMetaData:
    """The footer of a parquet file; missing or corrupt files raise errors naming the path."""
    if not path.is_file():
        raise FileNotFoundError(f"missing dataset file {path}")
    try:
        return pq.read_metadata(path)
    except Exception as e:  # as read_parquet
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


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_info_types(info: dict, path: Path) -> None:
    """Types of the info.json fields the readers and the writer use (each error names the key, wanted and got)."""

    def bad(key: str, want: str) -> DatasetFormatError:
        return DatasetFormatError(f"{path}: {key!r} must be {want}, got {info[key]!r}")

    fps = info["fps"]
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not fps > 0:
        raise bad("fps", "a positive number")
    for key in ("total_episodes", "total_frames", "total_tasks"):
        if key in info and not (_is_int(info[key]) and info[key] >= 0):
            raise bad(key, "a non-negative integer")
    if "chunks_size" in info and not (_is_int(info["chunks_size"]) and info["chunks_size"] > 0):
        raise bad("chunks_size", "a positive integer")
    if not isinstance(info["data_path"], str):
        raise bad("data_path", "a path template string")
    if info.get("video_path") is not None and not isinstance(info["video_path"], str):
        raise bad("video_path", "a path template string or null")
    if not isinstance(info["features"], dict):
        raise bad("features", "an object mapping feature names to specs")
    for key, feat in info["features"].items():
        if not isinstance(feat, dict):
            raise DatasetFormatError(f"{path}: feature {key!r} must be an object with 'dtype' and 'shape', got {feat}")
        for attr in ("dtype", "shape"):
            if attr not in feat:
                raise DatasetFormatError(f"{path}: feature {key!r} has no {attr!r}")
        shape = feat["shape"]
        if not isinstance(feat["dtype"], str) or not (isinstance(shape, list) and all(_is_int(d) for d in shape)):
            raise DatasetFormatError(
                f"{path}: feature {key!r} needs a string 'dtype' and a list of integers 'shape', got "
                f"dtype={feat['dtype']!r}, shape={shape!r}"
            )
        if feat["dtype"] not in (*CAMERA_DTYPES, *TEXT_DTYPES) and not _is_numpy_dtype(feat["dtype"]):
            raise DatasetFormatError(
                f"{path}: feature {key!r} has dtype {feat['dtype']!r}; expected one of "
                f"{[*CAMERA_DTYPES, *TEXT_DTYPES]} or a numpy dtype name such as 'float32'"
            )


def _is_numpy_dtype(name: str) -> bool:
    try:
        np.dtype(name)
    except TypeError:
        return False
    return True


def validate_info(info: dict, path: Path) -> None:
    """Check the keys, types and feature specs of info.json; raise naming the file and the offending key."""
    if not isinstance(info, dict):
        raise DatasetFormatError(f"{path}: expected a JSON object (a dataset's info), got a {type(info).__name__}")
    version = info.get("codebase_version")
    if version not in SUPPORTED_VERSIONS:
        raise DatasetFormatError(
            f"{path}: unknown codebase_version {version!r}; expected one of {list(SUPPORTED_VERSIONS)}"
        )
    missing = [k for k in INFO_REQUIRED if k not in info]
    if missing:
        raise DatasetFormatError(f"{path}: missing keys {missing}")
    _check_info_types(info, path)
    absent = [k for k in DEFAULT_FEATURES if k not in info["features"]]
    if absent:
        raise DatasetFormatError(f"{path}: default features {absent} missing from 'features'")
    # video_path may be null or absent (older image-only datasets); it is only needed for video features
    if info.get("video_path") is None and any(f["dtype"] == "video" for f in info["features"].values()):
        raise DatasetFormatError(f"{path}: video features declared but video_path is null")
    info["fps"] = int(round(float(info["fps"])))


def _stats_from_json(raw, path: Path) -> dict[str, dict[str, np.ndarray]]:
    """Stats from their JSON form {feature: {stat: nested lists}}, naming `path` when it is anything else."""
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise DatasetFormatError(f"{path}: expected an object {{feature: {{stat: values}}}}, got {str(raw)[:100]}")
    out = {}
    for key, stats in raw.items():
        out[key] = {}
        for name, value in stats.items():
            try:
                out[key][name] = arr = np.asarray(value)
            except ValueError as e:  # ragged nested lists
                raise DatasetFormatError(f"{path}: {key}/{name} is not a rectangular array of numbers ({e})") from e
            if arr.dtype.kind not in "biuf":
                raise DatasetFormatError(f"{path}: {key}/{name} must be numbers, got {str(value)[:100]}")
    return out


def _load_stats(root: Path) -> dict[str, dict[str, np.ndarray]]:
    path = root / "meta" / "stats.json"
    return _stats_from_json(read_json(path), path) if path.is_file() else {}


def _template_paths(root: Path, info: dict, key: str, fields: list[dict]) -> np.ndarray:
    """info[key] (data_path / video_path) filled with each of `fields`: paths relative to `root`, kept inside it."""
    info_path, template = root / "meta" / "info.json", info[key]
    try:
        rels = [template.format(**f) for f in fields]
    except (KeyError, IndexError, ValueError, AttributeError) as e:
        names = sorted(fields[0]) if fields else []
        raise DatasetFormatError(
            f"{info_path}: {key} template {template!r} cannot be filled from {names} ({type(e).__name__}: {e})"
        ) from e
    for rel in set(rels):
        confine(root, rel, f"{info_path} ({key})")
    return np.array(rels, dtype=str)


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
    wrong = [
        f"{c} ({eps[c].dtype})"
        for c in need
        if not np.issubdtype(eps[c].dtype, np.number if c.endswith("timestamp") else np.integer)
    ]
    if wrong:
        raise DatasetFormatError(
            f"{root / 'meta' / 'episodes'}: columns {wrong} must hold numbers (indices: integers) in every row"
        )
    pairs = zip(eps["data/chunk_index"].tolist(), eps["data/file_index"].tolist(), strict=True)
    eps["data_path"] = _template_paths(root, info, "data_path", [{"chunk_index": c, "file_index": f} for c, f in pairs])
    for key in [k for k, f in info["features"].items() if f["dtype"] == "video"]:
        pairs = zip(eps[f"videos/{key}/chunk_index"].tolist(), eps[f"videos/{key}/file_index"].tolist(), strict=True)
        fields = [{"video_key": key, "chunk_index": c, "file_index": f} for c, f in pairs]
        eps[f"videos/{key}/path"] = _template_paths(root, info, "video_path", fields)
        eps[f"videos/{key}/from_timestamp"] = eps[f"videos/{key}/from_timestamp"].astype(np.float64)
    return eps


def _load_v2(root: Path, info: dict) -> tuple[list[str], dict[str, np.ndarray], dict]:
    tasks_path, episodes_path = root / "meta" / "tasks.jsonl", root / "meta" / "episodes.jsonl"
    task_rows = rows_with(tasks_path, read_jsonl(tasks_path), ("task_index", "task"), ints=("task_index",))
    ep_keys = ("episode_index", "length")
    ep_rows = rows_with(episodes_path, read_jsonl(episodes_path), ep_keys, ints=ep_keys)
    tasks = [r["task"] for r in sorted(task_rows, key=lambda r: r["task_index"])]
    ep_rows = sorted(ep_rows, key=lambda r: r["episode_index"])
    ep_index = np.array([r["episode_index"] for r in ep_rows], dtype=np.int64)
    length = np.array([r["length"] for r in ep_rows], dtype=np.int64)
    to_index = np.cumsum(length)
    chunks_size = int(info.get("chunks_size", 1000))
    fields = [{"episode_chunk": int(e) // chunks_size, "episode_index": int(e)} for e in ep_index]
    eps: dict[str, np.ndarray] = {
        "episode_index": ep_index,
        "length": length,
        "dataset_from_index": to_index - length,
        "dataset_to_index": to_index,
        "data_path": _template_paths(root, info, "data_path", fields),
    }
    for key in [k for k, f in info["features"].items() if f["dtype"] == "video"]:
        eps[f"videos/{key}/path"] = _template_paths(root, info, "video_path", [f | {"video_key": key} for f in fields])
        eps[f"videos/{key}/from_timestamp"] = np.zeros(len(ep_index), dtype=np.float64)
    if info["codebase_version"] == "v2.0" or not (root / "meta" / "episodes_stats.jsonl").is_file():
        stats = _load_stats(root)
    else:
        from smolvla.data.stats import aggregate_stats

        stats_path = root / "meta" / "episodes_stats.jsonl"
        per_ep = rows_with(stats_path, read_jsonl(stats_path), ("stats",))
        stats = aggregate_stats([_stats_from_json(r["stats"], stats_path) for r in per_ep])
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
        if info["total_episodes"] == 0:  # created by a writer that has saved nothing yet: no tasks, no episodes
            raise DatasetFormatError(f"{info_path}: total_episodes is 0: the dataset has no episodes yet")
        tasks = _load_tasks_v3(root)
        episodes = _load_episodes_v3(root, info)
        stats = _load_stats(root)
    else:
        tasks, episodes, stats = _load_v2(root, info)
    meta = DatasetMeta(root=root, info=info, tasks=tasks, episodes=episodes, stats=stats)
    _check_episodes(meta)
    return meta
