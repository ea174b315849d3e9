"""`smolvla viz`: one episode of a LeRobot v3.0 dataset in the rerun viewer (the `viz` extra, torch-free).

    camera frames  -> observation.images.<name>          (rr.Image, decoded with PyAV)
    state / action -> observation.state/<joint>, action/<joint>   (rr.Scalars, one plot line per joint)
    timelines      -> frame_index (sequence) and timestamp (seconds)

as LeRobot's `visualize_dataset`, but reading the files with pyarrow and PyAV only. The recording is saved
to an .rrd file (open it with `rerun FILE.rrd`) or sent to a viewer spawned for it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

VIDEO_FILE = "videos/{key}/chunk-{chunk:03d}/file-{file:03d}.mp4"  # LeRobot v3.0 layout


def _inside(root: Path, relative: str) -> Path:
    """`root / relative`, refused if it leaves `root` (names come from the dataset's own files)."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ValueError(f"{root}: dataset path {relative!r} leaves the dataset directory")
    return path


def _episode_rows(root: Path, table_dir: str, episode: int, columns: list[str] | None = None) -> dict[str, Any]:
    """The rows of `episode` in the parquet files under root/table_dir, as {column: numpy array}."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    parts = []
    for path in sorted((root / table_dir).glob("chunk-*/file-*.parquet")):
        table = pq.read_table(path, columns=columns)
        parts.append(table.filter(pc.equal(table["episode_index"], episode)))
    table = pa.concat_tables(parts) if parts else None
    if table is None or table.num_rows == 0:
        raise ValueError(f"{root}: no rows of episode {episode} in {table_dir}/")
    return {name: table[name].to_numpy(zero_copy_only=False) for name in table.column_names}


def _decode(path: Path, start_s: float, count: int, fps: float) -> list[np.ndarray]:
    """`count` RGB frames of the mp4 at `path` from `start_s` on (the episode's slice of a shared file)."""
    import av

    frames: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        container.seek(int(start_s / stream.time_base), stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            if frame.time is not None and frame.time < start_s - 0.5 / fps:
                continue
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    return frames


def log_episode(root: str | Path, episode: int, recording: Any) -> int:
    """Log `episode` of the dataset at `root` into the rerun `recording`; returns the frames logged."""
    import rerun as rr

    root = Path(root)
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"{root} is not a LeRobot dataset: no meta/info.json")
    info = json.loads(info_path.read_text())
    if info.get("codebase_version") != "v3.0":
        raise ValueError(f"{info_path}: viz reads v3.0 datasets, got {info.get('codebase_version')!r}")
    fps, features = float(info["fps"]), info["features"]
    rows = _episode_rows(root, "data", episode)
    order = np.argsort(rows["frame_index"])
    count = len(order)
    meta = _episode_rows(root, "meta/episodes", episode)
    videos = {}
    for key in (k for k, f in features.items() if f["dtype"] == "video"):
        chunk, file = int(meta[f"videos/{key}/chunk_index"][0]), int(meta[f"videos/{key}/file_index"][0])
        path = _inside(root, VIDEO_FILE.format(key=key, chunk=chunk, file=file))
        videos[key] = _decode(path, float(meta[f"videos/{key}/from_timestamp"][0]), count, fps)
    vectors = {k: f for k, f in features.items() if f["dtype"].startswith("float") and k in rows}
    for i, row in enumerate(order):
        recording.set_time("frame_index", sequence=int(rows["frame_index"][row]))
        recording.set_time("timestamp", duration=float(rows["timestamp"][row]))
        for key, frames in videos.items():
            if i < len(frames):
                recording.log(key, rr.Image(frames[i]))
        for key, feat in vectors.items():
            values = np.atleast_1d(np.asarray(rows[key][row], dtype=np.float64))
            names = feat.get("names") or [str(d) for d in range(len(values))]
            for name, value in zip(names, values, strict=False):
                recording.log(f"{key}/{name}", rr.Scalars(value))
    return count


def visualize(root: str | Path, episode: int, save: str | Path | None = None) -> int:
    """Show `episode` in a spawned rerun viewer, or save it to `save` (.rrd) when given; returns frames logged."""
    import rerun as rr

    recording = rr.RecordingStream("smolvla_viz", recording_id=f"{Path(root).name}-episode-{episode}")
    if save is not None:
        recording.save(str(save))
    else:
        recording.spawn()
    try:
        return log_episode(root, episode, recording)
    finally:
        recording.flush()
        if save is not None:
            recording.disconnect()
