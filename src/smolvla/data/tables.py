"""Writing the v3.0 parquet tables (data frames, episodes metadata, tasks) as LeRobot lays them out.

Data files: one row group per episode, vectors as `fixed_size_list`, `image` cameras as HF Image structs
{bytes: PNG, path} (images.py), `huggingface` schema metadata (so LeRobot's HF-datasets loader sees the
same features, images included). tasks.parquet: `task_index` + `task` columns with
pandas metadata naming `task` as the index (LeRobot reads `tasks.iloc[i].name`).

Sizes for the writer's rollover rules add up over episodes, so that a batch of episodes knows them before
writing its files (writer.py). A data file's size is its payload (`payload_bytes`): the column chunks of its
row groups, i.e. the file less its 4-byte magic and footer; a row group's column chunks do not depend on
where in a file it lies, so the payload of a file is the sum of its episodes' payloads. An episodes file is
written as one compressed table (a row group per one-row episode would multiply its size and read time many
times over), so its size is counted as the sum of its rows' uncompressed Arrow sizes
(`episode_row_table(row).nbytes`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from smolvla.data.images import HF_IMAGE_FEATURE, image_struct_array
from smolvla.data.meta import DatasetFormatError


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


_PARQUET_OPTIONS = {"compression": "snappy"}  # shared by the writes and the payload measurement


def write_row_groups(path: Path, existing: Path | None, new: Sequence[pa.Table]) -> None:
    """Write `existing`'s row groups followed by each table of `new` as its own row group.

    The file takes the schema of `new[0]` (schema metadata included); the other tables are cast to it.
    """
    if not new:
        raise ValueError(f"{path}: no new row groups to write")
    schema = new[0].schema
    with pq.ParquetWriter(path, schema, **_PARQUET_OPTIONS) as writer:
        if existing is not None:
            for i, group in enumerate(_row_groups(existing)):
                try:
                    group = group.cast(schema)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as e:
                    raise DatasetFormatError(
                        f"{existing}: row group {i} does not fit the columns of the new rows, {schema.names} "
                        f"({type(e).__name__}: {e})"
                    ) from e
                writer.write_table(group)
        for table in new:
            writer.write_table(table.cast(schema))


def _row_groups(path: Path):
    """The row groups of an existing parquet file, one table at a time (a damaged file: an error naming it)."""
    try:
        source = pq.ParquetFile(path)
        for i in range(source.num_row_groups):
            yield source.read_row_group(i)
    except (pa.ArrowException, OSError) as e:
        raise DatasetFormatError(f"{path}: cannot read parquet ({type(e).__name__}: {e})") from e


def payload_bytes(metadata: pq.FileMetaData) -> int:
    """Bytes of all column chunks (pages and page headers) of a parquet file: its size less magic and footer."""
    return sum(
        metadata.row_group(i).column(j).total_compressed_size
        for i in range(metadata.num_row_groups)
        for j in range(metadata.num_columns)
    )


def table_payload_bytes(table: pa.Table) -> int:
    """`payload_bytes` that `table` adds to a file written by `write_row_groups` (encoded once, in memory)."""
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, table.schema, **_PARQUET_OPTIONS) as writer:
        writer.write_table(table)
    return payload_bytes(pq.read_metadata(pa.BufferReader(sink.getvalue())))


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


def episode_row_table(row: dict) -> pa.Table:
    """The one-row table of an episodes-metadata row, column types inferred from the values.

    Its `.nbytes` is the row's size for the rollover rule (see the module doc).
    """
    return pa.Table.from_pylist([row])


def write_episode_rows(path: Path, existing: Path | None, rows: Sequence[pa.Table]) -> None:
    """Write an episodes file: `existing`'s rows then the one-row tables `rows`, as one table (schema of rows[0])."""
    if not rows:
        raise ValueError(f"{path}: no episode rows to write")
    schema = rows[0].schema
    tables = ([pq.read_table(existing).cast(schema)] if existing is not None else []) + [r.cast(schema) for r in rows]
    pq.write_table(pa.concat_tables(tables), path, **_PARQUET_OPTIONS)


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
