"""The v3.0 file layout the writer appends to: path templates, file-series cursors, and where each series
stands on disk when a dataset is reopened.

A file series is the data parquet files, the mp4 files of one camera, or the episodes-metadata files; each is
numbered chunk-CCC/file-FFF (`chunks_size` files per chunk dir) and only its last file ever grows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from smolvla.data.encode import video_payload_bytes
from smolvla.data.meta import DatasetFormatError, read_parquet, read_parquet_metadata
from smolvla.data.tables import episode_row_table, payload_bytes

DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"


def next_file(chunk: int, file: int, chunks_size: int) -> tuple[int, int]:
    """The (chunk, file) numbers after these ones."""
    return (chunk + 1, 0) if file + 1 >= chunks_size else (chunk, file + 1)


def check_layout(info: dict, path: Path) -> None:
    """The writer appends at DATA_PATH / VIDEO_PATH: refuse a dataset whose info.json reads its files elsewhere."""
    has_video = any(f["dtype"] == "video" for f in info["features"].values())
    for key, ours in (("data_path", DATA_PATH), ("video_path", VIDEO_PATH if has_video else None)):
        if ours is not None and info.get(key) != ours:
            raise DatasetFormatError(f"{path}: {key} is {info.get(key)!r}; appending needs the v3.0 layout {ours!r}")


@dataclass(frozen=True)
class Cursor:
    """The current file of one file series (data, one camera, episodes metadata) and what it holds.

    units: rows (parquet) or frames (mp4) already in the file, 0 when it does not exist yet;
    nbytes: its size in the units of the rollover rules (writer.py module doc).
    """

    chunk: int = 0
    file: int = 0
    units: int = 0
    nbytes: int = 0

    def place(self, roll: bool, chunks_size: int) -> Cursor:
        """Where the next episode goes: this file, or the next (empty) one when `roll` and this one exists."""
        if roll and self.units:
            return Cursor(*next_file(self.chunk, self.file, chunks_size))
        return self

    def plus(self, units: int, nbytes: int) -> Cursor:
        return replace(self, units=self.units + units, nbytes=self.nbytes + nbytes)


def read_cursors(root: Path, info: dict) -> tuple[Cursor, Cursor, dict[str, Cursor]]:
    """(data, episodes metadata, camera -> video) cursors of a non-empty dataset, from the last episodes-metadata
    row and the files' contents (a damaged or short file raises an error naming it)."""
    video_keys = [k for k, f in info["features"].items() if f["dtype"] == "video"]
    meta_path = sorted((root / "meta" / "episodes").glob("*/*.parquet"))[-1]
    rows = read_parquet(meta_path).to_pylist()
    last, meta_size = rows[-1], sum(episode_row_table(row).nbytes for row in rows)
    ints = ["meta/episodes/chunk_index", "meta/episodes/file_index", "data/chunk_index", "data/file_index"]
    ints += [f"videos/{k}/{c}" for k in video_keys for c in ("chunk_index", "file_index")]
    bad = [c for c in ints if not isinstance(last.get(c), int) or last[c] < 0]
    bad += [c for k in video_keys if not isinstance(last.get(c := f"videos/{k}/to_timestamp"), float | int)]
    if bad:
        raise DatasetFormatError(
            f"{meta_path}: last row (episode {last.get('episode_index')}): columns {bad} are missing or not "
            "non-negative integers (timestamps: numbers)"
        )
    meta = Cursor(last["meta/episodes/chunk_index"], last["meta/episodes/file_index"], len(rows), meta_size)
    chunk, file = last["data/chunk_index"], last["data/file_index"]
    data_path = root / DATA_PATH.format(chunk_index=chunk, file_index=file)
    data_md = read_parquet_metadata(data_path)
    stored = set(data_md.schema.to_arrow_schema().names)
    missing = [k for k, f in info["features"].items() if f["dtype"] != "video" and k not in stored]
    if missing:  # new row groups would not fit the file
        raise DatasetFormatError(f"{data_path}: features {missing} declared in info.json are missing from the file")
    data = Cursor(chunk, file, data_md.num_rows, payload_bytes(data_md))
    videos = {}
    for key in video_keys:
        chunk, file = last[f"videos/{key}/chunk_index"], last[f"videos/{key}/file_index"]
        path = root / VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)
        frames = int(round(last[f"videos/{key}/to_timestamp"] * info["fps"]))
        if not path.is_file():
            raise FileNotFoundError(f"missing dataset file {path} (the current file of camera {key!r})")
        videos[key] = Cursor(chunk, file, frames, video_payload_bytes(path, frames))
    return data, meta, videos
