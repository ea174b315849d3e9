"""`LeRobotDataset`: a torch Dataset returning exactly what LeRobot's `LeRobotDataset.__getitem__` returns.

Item layout (keys as LeRobot, for a dataset with cameras C, vectors V of width D):
    "<camera>"            float32[3, H, W] in [0, 1] (uint8 with return_uint8=True); with k>1 deltas
                          float32[k, 3, H, W]; a single delta is squeezed to [3, H, W] like LeRobot
    "<vector>"            float32[D]; with deltas float32[k, D] (also for k == 1)
    "<key>_is_pad"        bool[k] for every key in delta_timestamps (True = outside the episode; the
                          value there repeats the episode's first/last frame, it is NOT zero)
    "timestamp"           float32[] ; "frame_index", "episode_index", "index", "task_index" int64[]
    "task"                str
    "<image feature>"     (PNG-in-parquet cameras, dtype "image") float32[3, H, W] like a video camera, but
                          with deltas always float32[k, 3, H, W], also for k == 1: LeRobot stacks the rows of
                          these keys like vector columns and squeezes only video queries
Key order is LeRobot's: video cameras first, then the parquet columns in info.json order (image cameras
included), then the `_is_pad` masks, then "task".
Works for v3.0 and v2.1/v2.0 datasets (see meta.py); video decoding is in video.py, PNG decoding (and what
stays in memory for image features) in images.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from smolvla.data.images import ImageColumn, check_image_column
from smolvla.data.meta import (
    CAMERA_DTYPES,
    TEXT_DTYPES,
    DatasetFormatError,
    DatasetMeta,
    column_to_numpy,
    load_meta,
    read_parquet,
)
from smolvla.data.video import DEFAULT_TOLERANCE_S, decode_frames

logger = logging.getLogger(__name__)


def delta_indices_from_timestamps(
    delta_timestamps: dict[str, Sequence[float]], fps: int, features: dict, tolerance_s: float
) -> dict[str, np.ndarray]:
    """Convert seconds to frame offsets (int64[k] per key), refusing offsets that are not whole frames."""
    out = {}
    for key, deltas in delta_timestamps.items():
        if key not in features:
            raise ValueError(f"delta_timestamps key {key!r} is not a dataset feature; known: {sorted(features)}")
        if len(deltas) == 0:
            raise ValueError(f"delta_timestamps[{key!r}] is empty")
        for d in deltas:
            if abs(d * fps - round(d * fps)) / fps > tolerance_s:
                raise ValueError(
                    f"delta_timestamps[{key!r}] contains {d}s, which is not a multiple of 1/fps (fps={fps}) "
                    f"within tolerance {tolerance_s}s"
                )
        out[key] = np.array([round(d * fps) for d in deltas], dtype=np.int64)
    return out


class LeRobotDataset(torch.utils.data.Dataset):
    """Frames of a local LeRobotDataset (v3.0, v2.1, v2.0) with LeRobot's item semantics.

    Args:
        root: dataset directory (holding meta/, data/, videos/).
        delta_timestamps: key -> list of offsets in seconds relative to the current frame; each key then
            returns a stack over the offsets plus `<key>_is_pad` (clamped at the episode's ends).
        episodes: episode indices to keep (None = all); item i is relative to the selection.
        tolerance_s: max |decoded frame time - query time| (strict), and delta rounding tolerance.
        return_uint8: cameras as uint8 instead of float32 / 255.
        image_transforms: callable applied to each camera tensor after decoding.
    """

    def __init__(
        self,
        root: str | Path,
        delta_timestamps: dict[str, Sequence[float]] | None = None,
        episodes: Sequence[int] | None = None,
        tolerance_s: float = DEFAULT_TOLERANCE_S,
        return_uint8: bool = False,
        image_transforms: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        self.root = Path(root)
        self.meta: DatasetMeta = load_meta(self.root)
        self.tolerance_s = tolerance_s
        self.return_uint8 = return_uint8
        self.image_transforms = image_transforms
        self.delta_timestamps = dict(delta_timestamps) if delta_timestamps else None
        self.delta_indices = (
            delta_indices_from_timestamps(delta_timestamps, self.fps, self.features, tolerance_s)
            if delta_timestamps
            else {}
        )
        n_ep = self.meta.total_episodes
        self.episodes = list(range(n_ep)) if episodes is None else sorted({int(e) for e in episodes})
        bad = [e for e in self.episodes if not 0 <= e < n_ep]
        if bad:
            raise ValueError(f"episodes {bad} out of range: the dataset has {n_ep} episodes (0..{n_ep - 1})")
        self._check_files_exist()
        self._images: dict[str, ImageColumn] = {}
        self._columns = self._load_frames()
        # keys of one parquet row, in info.json order (LeRobot's item order for them)
        self._row_keys = [k for k in self.features if k in self._columns or k in self._images]
        self._row_of_index = np.full(self.meta.total_frames, -1, dtype=np.int64)
        self._row_of_index[self._columns["index"]] = np.arange(len(self._columns["index"]))

    # -- properties mirroring LeRobot's ------------------------------------------------------------------
    @property
    def fps(self) -> int:
        return self.meta.fps

    @property
    def features(self) -> dict[str, dict]:
        return self.meta.features

    @property
    def camera_keys(self) -> list[str]:
        return self.meta.camera_keys

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def num_frames(self) -> int:
        return len(self._columns["index"])

    def __len__(self) -> int:
        return self.num_frames

    # -- loading -------------------------------------------------------------------------------------------
    def _check_files_exist(self) -> None:
        eps = self.meta.episodes
        for e in self.episodes:
            rel = [eps["data_path"][e]] + [eps[f"videos/{k}/path"][e] for k in self.meta.video_keys]
            for r in rel:
                if not (self.root / r).is_file():
                    raise FileNotFoundError(f"missing dataset file {self.root / r} (needed by episode {e})")

    def _load_frames(self) -> dict[str, np.ndarray]:
        """Per-frame columns of the selected episodes as numpy arrays ([N] scalars, [N, D] vectors)."""
        eps = self.meta.episodes
        wanted = [k for k, f in self.features.items() if f["dtype"] not in CAMERA_DTYPES]
        paths = sorted({str(eps["data_path"][e]) for e in self.episodes})
        selected = set(self.episodes)
        image_keys = self.meta.image_keys
        parts: dict[str, list[np.ndarray]] = {k: [] for k in wanted}
        image_parts: dict[str, list] = {k: [] for k in image_keys}
        for rel in paths:
            path = self.root / rel
            table = read_parquet(path)
            missing = [k for k in wanted + image_keys if k not in table.column_names]
            if missing:
                raise DatasetFormatError(f"{path}: features {missing} declared in info.json are missing from the file")
            ep_col = column_to_numpy(table, "episode_index", path)
            keep = np.isin(ep_col, list(selected))
            for k in wanted:
                parts[k].append(column_to_numpy(table, k, path)[keep])
            for k in image_keys:  # kept compressed; decoded per item
                col = check_image_column(table.column(k), path, k).filter(pa.array(keep))
                image_parts[k].append((path, col, np.nonzero(keep)[0]))
            self._check_episode_rows(path, ep_col[keep], parts["index"][-1])
        cols = {k: np.concatenate(v) for k, v in parts.items()}
        for k in image_keys:
            self._images[k] = ImageColumn(k, self.features[k]["shape"], self.root, image_parts[k])
        for k in wanted:
            shape = tuple(self.features[k]["shape"])
            want = {(len(cols[k]), *shape)} | ({(len(cols[k]),)} if shape == (1,) else set())  # [1]: scalar or list
            if self.features[k]["dtype"] not in TEXT_DTYPES and cols[k].shape not in want:
                raise DatasetFormatError(
                    f"{self.root}: feature {k!r} has shape {list(shape)} in info.json but the data has "
                    f"{list(cols[k].shape[1:])} per frame"
                )
        if len(self.episodes) == self.meta.total_episodes and len(cols["index"]) != self.meta.total_frames:
            raise DatasetFormatError(
                f"{self.root / 'meta' / 'info.json'}: total_frames={self.meta.total_frames} but the data files "
                f"hold {len(cols['index'])} frames"
            )
        return cols

    def _check_episode_rows(self, path: Path, ep_col: np.ndarray, index_col: np.ndarray) -> None:
        eps = self.meta.episodes
        for e in np.unique(ep_col):
            idx = index_col[ep_col == e]
            a, b = int(eps["dataset_from_index"][e]), int(eps["dataset_to_index"][e])
            if len(idx) != b - a or not np.array_equal(idx, np.arange(a, b)):
                raise DatasetFormatError(
                    f"{path}: episode {int(e)} should hold global indices [{a}, {b}) ({b - a} frames) but has "
                    f"{len(idx)} rows ({idx[:1].tolist()}..{idx[-1:].tolist()})"
                )

    # -- items -----------------------------------------------------------------------------------------------
    def _query_rows(self, key: str, g: int, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        target = g + self.delta_indices[key]
        pad = (target < a) | (target >= b)
        return self._row_of_index[np.clip(target, a, b - 1)], pad

    def _camera(self, key: str, ep: int, times: np.ndarray) -> torch.Tensor:
        eps = self.meta.episodes
        path = self.root / str(eps[f"videos/{key}/path"][ep])
        offset = float(eps[f"videos/{key}/from_timestamp"][ep])
        frames = torch.from_numpy(decode_frames(path, [offset + float(t) for t in times], self.tolerance_s, ep))
        frames = frames.squeeze(0) if frames.shape[0] == 1 else frames
        out = frames if self.return_uint8 else frames.to(torch.float32) / 255.0
        return self.image_transforms(out) if self.image_transforms is not None else out

    def _image(self, key: str, rows: np.ndarray | None, row: int, ep: int) -> torch.Tensor:
        """Image feature at the query `rows` (float32[k, 3, H, W]) or, when None, at `row` (float32[3, H, W])."""
        index, col = self._columns["index"], self._images[key]
        if rows is None:
            frames = torch.from_numpy(col.decode(row, ep, int(index[row])))
        else:
            uniq, inverse = np.unique(rows, return_inverse=True)  # padded queries repeat an edge frame: decode once
            frames = torch.from_numpy(np.stack([col.decode(r, ep, int(index[r])) for r in uniq])[inverse])
        out = frames if self.return_uint8 else frames.to(torch.float32) / 255.0
        return self.image_transforms(out) if self.image_transforms is not None else out

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a dataset of {len(self)} frames")
        row = int(i) % len(self)
        cols = self._columns
        g, ep = int(cols["index"][row]), int(cols["episode_index"][row])
        a = int(self.meta.episodes["dataset_from_index"][ep])
        b = int(self.meta.episodes["dataset_to_index"][ep])
        item: dict = {}
        for key in self.meta.video_keys:
            if key in self.delta_indices:
                rows, _ = self._query_rows(key, g, a, b)
                item[key] = self._camera(key, ep, cols["timestamp"][rows])
            else:
                item[key] = self._camera(key, ep, cols["timestamp"][row : row + 1])
        for key in self._row_keys:
            rows = self._query_rows(key, g, a, b)[0] if key in self.delta_indices else None
            if key in self._images:  # [k, 3, H, W] with deltas (never squeezed, as LeRobot), else [3, H, W]
                item[key] = self._image(key, rows, row, ep)
            elif rows is not None:
                item[key] = torch.from_numpy(cols[key][rows].copy())
            else:
                item[key] = torch.from_numpy(np.array(cols[key][row]))
        pads = {f"{k}_is_pad": torch.from_numpy(self._query_rows(k, g, a, b)[1]) for k in self.delta_indices}
        item.update(pads)
        item["task"] = self.meta.tasks[int(cols["task_index"][row])]
        return item
