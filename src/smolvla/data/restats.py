"""Recompute the statistics of an existing v3.0 dataset from its files (`smolvla stats ROOT`).

Numeric features are recomputed exactly as LeRobot's writer computes them (timestamp in float64 from
frame_index / fps), so on a LeRobot-written dataset they come out identical to the stored ones. Video
camera stats are computed from the DECODED video frames (LeRobot used the PNGs before encoding, which no
longer exist), so they differ from LeRobot's by the codec's error (about 1/255). Image-feature cameras
keep their PNGs inside the data parquet, so their stats are recomputed from the very pixels LeRobot used.
Dataset stats are aggregated episode by episode in order, as the writer does, so a rerun on unchanged data
reproduces stats.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from smolvla.data.commit import Transaction
from smolvla.data.images import ImageColumn, check_image_column
from smolvla.data.lock import DatasetLock
from smolvla.data.meta import (
    CAMERA_DTYPES,
    TEXT_DTYPES,
    DatasetFormatError,
    column_to_numpy,
    load_meta,
    read_json,
    read_parquet,
)
from smolvla.data.stats import aggregate_stats, downsample_for_stats, image_stats, sample_frame_indices, vector_stats
from smolvla.data.video import close_readers, decode_frames


def _camera_stats(meta, key: str, ep: int) -> dict[str, np.ndarray]:
    eps = meta.episodes
    length = int(eps["length"][ep])
    offset = float(eps[f"videos/{key}/from_timestamp"][ep])
    path = meta.root / str(eps[f"videos/{key}/path"][ep])
    idx = sample_frame_indices(length)
    frames = decode_frames(path, [offset + i / meta.fps for i in idx], episode=ep)
    return image_stats(np.stack([downsample_for_stats(f) for f in frames]))


def _image_columns(meta, table, path: Path) -> dict[str, ImageColumn]:
    """The image features of one data file, rows = the file's rows (decoded on demand)."""
    rows = np.arange(table.num_rows)
    return {
        k: ImageColumn(
            k, meta.features[k]["shape"], meta.root, [(path, check_image_column(table.column(k), path, k), rows)]
        )
        for k in meta.image_keys
    }


def _image_feature_stats(column: ImageColumn, ep: int, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Stats of one image feature for episode `ep` from its PNGs at column `rows` (the episode's frames)."""
    frames = [column.decode(int(rows[i]), ep) for i in sample_frame_indices(len(rows))]
    return image_stats(np.stack([downsample_for_stats(f) for f in frames]))


def _numeric_columns(meta, table, path: Path, numeric: list[str]) -> dict[str, np.ndarray]:
    """The numeric feature columns of one data file, checked against info.json and the episodes metadata."""
    missing = [k for k in numeric + meta.image_keys if k not in table.column_names]
    if missing:
        raise DatasetFormatError(f"{path}: features {missing} declared in info.json are missing from the file")
    cols = {k: column_to_numpy(table, k, path) for k in numeric}
    for k, col in cols.items():
        shape = list(meta.features[k]["shape"])
        if col.dtype.kind not in "biuf" or list(col.shape[1:]) not in (shape, [] if shape == [1] else shape):
            raise DatasetFormatError(
                f"{path}: feature {k!r} should hold numbers of shape {shape} per frame (info.json), got "
                f"{col.dtype}{list(col.shape[1:])}"
            )
    eps = meta.episodes
    for ep in np.unique(cols["episode_index"]).tolist():
        rows = int((cols["episode_index"] == ep).sum())
        if not 0 <= ep < meta.total_episodes or rows != int(eps["length"][ep]):
            expected = f"{int(eps['length'][ep])} frames" if 0 <= ep < meta.total_episodes else "no such episode"
            raise DatasetFormatError(f"{path}: episode_index {ep} has {rows} rows; episodes metadata: {expected}")
    return cols


def compute_dataset_stats(root: str | Path, cameras: bool = True) -> tuple[list[dict], dict]:
    """(per-episode stats, dataset stats) recomputed from the files of the dataset at `root`."""
    meta = load_meta(root)
    numeric = [k for k, f in meta.features.items() if f["dtype"] not in CAMERA_DTYPES + TEXT_DTYPES]
    per_ep: list[dict] = [{} for _ in range(meta.total_episodes)]
    for rel in sorted(set(meta.episodes["data_path"].tolist())):
        table = read_parquet(meta.root / rel)
        cols = _numeric_columns(meta, table, meta.root / rel, numeric)
        ep_col = cols["episode_index"]
        images = _image_columns(meta, table, meta.root / rel) if cameras else {}
        for ep in np.unique(ep_col):
            rows = ep_col == ep
            for k in numeric:
                values = cols["frame_index"][rows] / meta.fps if k == "timestamp" else cols[k][rows]
                per_ep[int(ep)][k] = vector_stats(values)
            for k, column in images.items():
                per_ep[int(ep)][k] = _image_feature_stats(column, int(ep), np.nonzero(rows)[0])
    absent = [ep for ep, stats in enumerate(per_ep) if not stats]
    if absent:
        raise DatasetFormatError(f"{meta.root}: episodes {absent[:10]} have no frames in the data files they name")
    if cameras:
        for ep in range(meta.total_episodes):
            for key in meta.video_keys:
                per_ep[ep][key] = _camera_stats(meta, key, ep)
    running = per_ep[0]
    for ep_stats in per_ep[1:]:
        running = aggregate_stats([running, ep_stats])
    return per_ep, running


def write_dataset_stats(root: str | Path, cameras: bool = True) -> dict:
    """Recompute and store stats (episodes parquet `stats/*` columns and meta/stats.json) atomically.

    Holds the dataset's lock (lock.py) throughout, so a DatasetWriter cannot append episodes this would miss.
    """
    root = Path(root)
    with DatasetLock(root):
        meta = load_meta(root)
        if meta.version != "v3.0":
            raise ValueError(f"{root}: stats can be rewritten only for v3.0 datasets, got {meta.version}")
        per_ep, dataset = compute_dataset_stats(root, cameras)
        txn = Transaction(root, "stats")
        try:
            _stage_stats(root, txn, per_ep, dataset)
        except BaseException:
            txn.abort()
            raise
        close_readers()
        txn.commit()
    return dataset


def _stage_stats(root: Path, txn: Transaction, per_ep: list[dict], dataset: dict) -> None:
    for path in sorted((root / "meta" / "episodes").glob("*/*.parquet")):
        rows = read_parquet(path).to_pylist()
        for row in rows:  # load_meta checked episode_index: 0..N-1 over the files
            for key, stats in per_ep[row["episode_index"]].items():
                for name, value in stats.items():
                    dtype = np.int64 if name == "count" else np.float64
                    row[f"stats/{key}/{name}"] = np.asarray(value).astype(dtype).tolist()
        pq.write_table(pa.Table.from_pylist(rows), txn.path(path.relative_to(root)))
    stats_path = root / "meta" / "stats.json"
    old = read_json(stats_path) if stats_path.is_file() else {}  # an object of objects: load_meta checked it
    new = {k: {s: np.asarray(v).tolist() for s, v in st.items()} for k, st in dataset.items()}
    txn.path("meta/stats.json").write_text(json.dumps(old | new, indent=4))
