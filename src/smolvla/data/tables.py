"""Writing the v3.0 parquet tables (data frames, episodes metadata, tasks) as LeRobot lays them out.

Data files: one row group per episode, vectors as `fixed_size_list`, `image` cameras as HF Image structs
{bytes: PNG, path} (images.py), `huggingface` schema metadata (so LeRobot's HF-datasets loader sees the
same features, images included). tasks.parquet: `task_index` + `task` columns with
pandas metadata naming `task` as the index (LeRobot reads `tasks.iloc[i].name`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from smolvla.data.images import HF_IMAGE_FEATURE, image_struct_array


def _arrow_column(values: np.ndarray, feat: dict) -> pa.Array:
    if values.ndim == 1:
        return pa.array(values)
    flat = pa.array(values.reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])


def _hf_feature(feat: dict) -> dict:
    if feat["dtype"] == "image":
        return dict(HF_IMAGE_FEATURE)
    value = {"dtype": feat["dtype"], "_type": "Value"}
    if list(feat["shape"]) == [1]:
        return value
    return {"feature": value, "length": int(np.prod(feat["shape"])), "_type": "List"}


def frames_table(columns: dict[str, np.ndarray], features: dict) -> pa.Table:
    """Arrow table of one episode's frame columns, in info.json feature order (video cameras excluded).

    `columns[k]` is [T] or [T, D] for numeric features and uint8[T, H, W, 3] for image features (PNG-encoded here).
    """
    keys = [k for k, f in features.items() if f["dtype"] != "video"]
    arrays = [
        image_struct_array(columns[k]) if features[k]["dtype"] == "image" else _arrow_column(columns[k], features[k])
        for k in keys
    ]
    meta = {"huggingface": json.dumps({"info": {"features": {k: _hf_feature(features[k]) for k in keys}}})}
    return pa.Table.from_arrays(arrays, names=keys).replace_schema_metadata(meta)


def write_row_groups(path: Path, existing: Path | None, new: pa.Table) -> None:
    """Write `existing`'s row groups (one per episode) followed by `new` as its own row group."""
    with pq.ParquetWriter(path, new.schema, compression="snappy") as writer:
        if existing is not None:
            old = pq.ParquetFile(existing)
            for i in range(old.num_row_groups):
                writer.write_table(old.read_row_group(i).cast(new.schema))
        writer.write_table(new)


def write_tasks(path: Path, tasks: list[str]) -> None:
    table = pa.table({"task_index": pa.array(np.arange(len(tasks), dtype=np.int64)), "task": pa.array(tasks)})
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64"},
            {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object"},
        ],
        "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }
    for col in pandas_meta["columns"]:
        col["metadata"] = None
    pq.write_table(table.replace_schema_metadata({"pandas": json.dumps(pandas_meta)}), path)


def episode_row(
    ep: dict, ep_stats: dict[str, dict[str, np.ndarray]], meta_chunk: int, meta_file: int
) -> dict[str, object]:
    """One row of meta/episodes: bookkeeping columns of `ep`, flattened `stats/<feature>/<stat>`, location."""
    row = dict(ep)
    for key, stats in ep_stats.items():
        for name, value in stats.items():
            arr = np.asarray(value)
            row[f"stats/{key}/{name}"] = arr.astype(np.int64 if name == "count" else np.float64).tolist()
    row["meta/episodes/chunk_index"] = meta_chunk
    row["meta/episodes/file_index"] = meta_file
    return row


def write_episode_rows(path: Path, existing: Path | None, row: dict) -> None:
    """Rewrite an episodes parquet with `row` appended (rows keep their column set and order)."""
    rows = pq.read_table(existing).to_pylist() if existing is not None else []
    pq.write_table(pa.Table.from_pylist(rows + [row]), path)


def read_episode_stats(root: Path) -> list[dict[str, dict[str, np.ndarray]]]:
    """Per-episode stats from the `stats/...` columns of meta/episodes (row order = episode order)."""
    out: list[dict] = []
    for path in sorted((root / "meta" / "episodes").glob("*/*.parquet")):
        for row in pq.read_table(path).to_pylist():
            stats: dict[str, dict[str, np.ndarray]] = {}
            for col, value in row.items():
                if col.startswith("stats/") and value is not None:
                    key, name = col[len("stats/") :].rsplit("/", 1)
                    stats.setdefault(key, {})[name] = np.asarray(value)
            out.append(stats)
    return out
