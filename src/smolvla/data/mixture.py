"""Pretraining mixtures: several LeRobot datasets behind one Dataset with standard views and padding.

Config (JSON-serialisable frozen dataclasses):

    {"sources": [{"root": "/data/so100_pick", "weight": 2.0},
                 {"root": "/data/other", "weight": 1.0,
                  "camera_mapping": {"observation.images.front": "observation.images.image1",
                                     "observation.images.gripper": "observation.images.image2"}}],
     "max_state_dim": 32, "max_action_dim": 32, "chunk_size": 50, "image_size": [512, 512]}

Item of `MixtureDataset` (standard keys, same for every source so batches collate):
    "observation.images.image{1,2,3}"  float32[3, H, W] in [0, 1]; a view the source lacks is all zeros
    "observation.images.image{k}_is_pad" bool[1]: True = view absent (mask its tokens out)
    "observation.state"   float32[max_state_dim]   zero-padded after the real `state_dim` entries
    "action"              float32[chunk, max_action_dim] zero-padded after `action_dim`; "action_is_pad" bool[chunk]
    "state_dim", "action_dim", "source_index" int64[]; "task" str; plus "index", "episode_index", "frame_index"
State and action are normalised with the SOURCE's own mean/std ((x - mean) / (std + 1e-8)) when
`normalize=True` (default), because one set of stats cannot fit datasets recorded in different units; the
per-source stats stay available in `MixtureDataset.stats[source_index]`. Default camera mapping by name:
"top" -> image1, "wrist" -> image2, "side" -> image3; any other camera must be mapped (or mapped to null to
drop it on purpose), never silently ignored. Images are resized keeping aspect ratio and zero-padded
(left/top) to `image_size` when it is set, so sources of different resolutions collate.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from smolvla.data.dataset import LeRobotDataset
from smolvla.data.meta import load_meta
from smolvla.types import ACTION, ACTION_IS_PAD, OBS_IMAGES_PREFIX, OBS_STATE

VIEWS = tuple(f"{OBS_IMAGES_PREFIX}image{i}" for i in (1, 2, 3))
DEFAULT_VIEW_BY_NAME = {"top": VIEWS[0], "wrist": VIEWS[1], "side": VIEWS[2]}
NORM_EPS = 1e-8


@dataclass(frozen=True)
class MixtureSource:
    """One dataset of the mixture: `weight` is its relative sampling probability."""

    root: str
    weight: float = 1.0
    camera_mapping: dict[str, str | None] | None = None
    episodes: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not self.weight > 0:
            raise ValueError(f"source {self.root}: weight must be > 0, got {self.weight}")
        for cam, view in (self.camera_mapping or {}).items():
            if view is not None and view not in VIEWS:
                raise ValueError(f"source {self.root}: camera {cam!r} mapped to {view!r}; expected one of {VIEWS}")


@dataclass(frozen=True)
class MixtureConfig:
    sources: tuple[MixtureSource, ...]
    max_state_dim: int = 32
    max_action_dim: int = 32
    chunk_size: int = 50
    image_size: tuple[int, int] | None = None
    normalize: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.sources:
            raise ValueError("a mixture needs at least one source")

    @classmethod
    def from_dict(cls, d: dict) -> MixtureConfig:
        unknown = set(d) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ValueError(f"unknown mixture config keys {sorted(unknown)}")
        srcs = tuple(
            MixtureSource(**{**s, "episodes": tuple(s["episodes"]) if s.get("episodes") is not None else None})
            for s in d["sources"]
        )
        size = d.get("image_size")
        return cls(**{**d, "sources": srcs, "image_size": tuple(size) if size is not None else None})

    @classmethod
    def from_json(cls, path: str | Path) -> MixtureConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def resolve_camera_mapping(source: MixtureSource, camera_keys: list[str]) -> dict[str, str]:
    """Dataset camera key -> standard view; refuses unmapped cameras and two cameras on one view."""
    explicit = source.camera_mapping or {}
    unknown = sorted(set(explicit) - set(camera_keys))
    if unknown:
        raise ValueError(f"source {source.root}: camera_mapping names {unknown}, not cameras of it: {camera_keys}")
    out = {}
    for cam in camera_keys:
        if cam in explicit:
            view = explicit[cam]
        else:
            view = DEFAULT_VIEW_BY_NAME.get(cam.removeprefix(OBS_IMAGES_PREFIX))
            if view is None:
                raise ValueError(
                    f"source {source.root}: camera {cam!r} has no default view; add it to camera_mapping "
                    f"(one of {VIEWS}, or null to drop it)"
                )
        if view is not None:
            if view in out.values():
                raise ValueError(f"source {source.root}: two cameras map to {view}")
            out[cam] = view
    return out


def resize_with_pad(img: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """float32[3, h, w] -> float32[3, height, width]: keep aspect ratio, bilinear, pad left/top with 0."""
    _, h, w = img.shape
    ratio = max(w / width, h / height)
    new_h, new_w = int(h / ratio), int(w / ratio)
    resized = F.interpolate(img[None], size=(new_h, new_w), mode="bilinear", align_corners=False)[0]
    return F.pad(resized, (width - new_w, 0, height - new_h, 0), value=0.0)


def _pad_last(x: torch.Tensor, size: int, what: str) -> torch.Tensor:
    if x.shape[-1] > size:
        raise ValueError(f"{what} has {x.shape[-1]} dims, more than the mixture's max of {size}")
    return F.pad(x, (0, size - x.shape[-1]))


class MixtureDataset(torch.utils.data.Dataset):
    """Concatenation of the sources' LeRobotDatasets with standard views and padded vectors."""

    def __init__(self, config: MixtureConfig):
        self.config = config
        self.datasets: list[LeRobotDataset] = []
        self.mappings: list[dict[str, str]] = []
        self.stats: list[dict[str, dict[str, torch.Tensor]]] = []
        for src in config.sources:
            meta = load_meta(src.root)
            delta = {OBS_STATE: [0.0], ACTION: [i / meta.fps for i in range(config.chunk_size)]}
            # Cameras are read without a delta: a video frame and an image row then both come back [3, H, W]
            # (with a [0.0] delta LeRobot's image columns stack to [1, 3, H, W]).
            ds = LeRobotDataset(src.root, delta_timestamps=delta, episodes=src.episodes)
            self.datasets.append(ds)
            self.mappings.append(resolve_camera_mapping(src, ds.camera_keys))
            self.stats.append(self._source_stats(ds))
        self.lengths = [len(d) for d in self.datasets]
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])

    def _source_stats(self, ds: LeRobotDataset) -> dict[str, dict[str, torch.Tensor]]:
        out = {}
        for key in (OBS_STATE, ACTION):
            if key not in ds.meta.stats:
                if self.config.normalize:
                    raise ValueError(f"source {ds.root}: no stats for {key!r}; run `smolvla stats {ds.root}`")
                continue
            out[key] = {s: torch.as_tensor(ds.meta.stats[key][s], dtype=torch.float32) for s in ("mean", "std")}
        return out

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, i: int) -> tuple[int, int]:
        """(source index, index inside that source) of mixture item i."""
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for a mixture of {len(self)} frames")
        s = int(np.searchsorted(self.offsets, i, side="right") - 1)
        return s, int(i - self.offsets[s])

    def _norm(self, s: int, key: str, x: torch.Tensor) -> torch.Tensor:
        if not self.config.normalize:
            return x
        st = self.stats[s][key]
        return (x - st["mean"]) / (st["std"] + NORM_EPS)

    def __getitem__(self, i: int) -> dict:
        s, j = self.locate(i)
        raw = self.datasets[s][j]
        cfg = self.config
        item: dict = {}
        present = {view: cam for cam, view in self.mappings[s].items()}
        shape = None
        for view in VIEWS:
            if view in present:
                img = raw[present[view]]
                img = resize_with_pad(img, *cfg.image_size) if cfg.image_size else img
                item[view], shape = img, img.shape
        for view in VIEWS:
            if view not in item:
                if shape is None and cfg.image_size is None:
                    raise ValueError(f"source {cfg.sources[s].root} has no camera and image_size is not set")
                item[view] = torch.zeros(shape if shape is not None else (3, *cfg.image_size))
            item[f"{view}_is_pad"] = torch.tensor([view not in present])
        state = self._norm(s, OBS_STATE, raw[OBS_STATE][-1])  # last (only) observation step
        action = self._norm(s, ACTION, raw[ACTION])
        item[OBS_STATE] = _pad_last(state, cfg.max_state_dim, f"{cfg.sources[s].root} state")
        item[ACTION] = _pad_last(action, cfg.max_action_dim, f"{cfg.sources[s].root} action")
        item[ACTION_IS_PAD] = raw[f"{ACTION}_is_pad"]
        item["state_dim"] = torch.tensor(state.shape[-1])
        item["action_dim"] = torch.tensor(action.shape[-1])
        item["source_index"] = torch.tensor(s)
        for key in ("index", "episode_index", "frame_index", "timestamp", "task"):
            item[key] = raw[key]
        return item


class MixtureSampler(torch.utils.data.Sampler[int]):
    """Weighted sampling over sources: pick a source with probability weight / sum(weights), then a
    uniform frame inside it. Deterministic for a given (seed, epoch); call `set_epoch` each epoch."""

    def __init__(self, lengths: list[int], weights: list[float], num_samples: int, seed: int = 0):
        if len(lengths) != len(weights) or not lengths:
            raise ValueError(f"need one weight per source, got {len(weights)} weights for {len(lengths)} sources")
        if any(n <= 0 for n in lengths):
            raise ValueError(f"every source needs at least one frame, got lengths {lengths}")
        self.lengths = torch.tensor(lengths, dtype=torch.int64)
        self.offsets = torch.cumsum(self.lengths, 0) - self.lengths
        self.weights = torch.tensor(weights, dtype=torch.float64)
        self.num_samples, self.seed, self.epoch = num_samples, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        src = torch.multinomial(self.weights, self.num_samples, replacement=True, generator=g)
        within = (torch.rand(self.num_samples, generator=g, dtype=torch.float64) * self.lengths[src]).long()
        return iter((self.offsets[src] + within).tolist())
