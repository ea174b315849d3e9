"""Training mixtures: heterogeneous LeRobot datasets mapped to one standard layout (the paper's pretraining).

A mixture file (JSON, documented in docs/mixtures.md) lists datasets with sampling weights:

    {"datasets": [
        {"root": "so101_pick", "weight": 2.0, "cameras": {"laptop": "image1", "phone": null}},
        {"root": "metaworld_reach", "cameras": {"corner": "image3"}, "relabel": {"task 1": "reach the goal"}}]}

Standard layout of every item (the same for every dataset, so batches collate):
    "observation.images.image{1,2,3}"  float32[3, S, S] in [0, 1] (image1 top, image2 wrist, image3 side),
                                       resized with padding to the model's S; a view the dataset lacks is 0
    "observation.images_is_pad"        bool[3]: True = view absent (the policy masks its tokens out)
    "observation.state"                float32[max_state_dim] normalised with THIS dataset's mean/std,
                                       zero after its real size
    "action"                           float32[chunk, max_action_dim] likewise; "action_is_pad" bool[chunk]
    "action_dim_is_pad"                bool[max_action_dim]: True beyond the dataset's real action size
    "task" str (after the dataset's relabel table), "source_index" int64[], "index", "episode_index", ...
Each dataset is normalised with its own statistics because one set cannot fit robots recorded in different
units; the policy trained on a mixture therefore normalises nothing itself ("identity").

The items themselves are built by `smolvla.data.mixture_dataset`; this module is the file format and the
checks that need only metadata.

Cameras: a dataset camera named top / wrist / side (the part after "observation.images.") maps to
image1 / image2 / image3 by default; any other camera must be mapped in "cameras" (to a view or to null,
which drops it on purpose): an unmapped camera is an error naming it, never silently ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from smolvla import configio
from smolvla.data.paths import confine
from smolvla.types import ACTION, OBS_IMAGES_PREFIX, OBS_STATE

if TYPE_CHECKING:  # this module stays torch- and pyarrow-free: training configs import it
    from smolvla.data.meta import DatasetMeta

VIEW_NAMES = ("image1", "image2", "image3")
VIEWS = tuple(OBS_IMAGES_PREFIX + v for v in VIEW_NAMES)
DEFAULT_VIEW_BY_NAME = {"top": "image1", "wrist": "image2", "side": "image3"}


@dataclass(frozen=True)
class MixtureSource:
    """One dataset of a mixture.

    root: dataset directory (relative paths in a file are resolved against the file's folder).
    weight: relative sampling probability of the dataset (frames are uniform within it).
    cameras: camera name -> "image1" | "image2" | "image3" | null (drop); names without the
        "observation.images." prefix. Cameras named top / wrist / side may be left out (default views).
    relabel: task string -> replacement, applied when the dataset is read (the file on disk is untouched;
        `smolvla relabel` rewrites a dataset instead).
    """

    root: str
    weight: float = 1.0
    cameras: dict[str, str | None] = field(default_factory=dict)
    relabel: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        configio.check_fields(self)
        if not self.weight > 0:
            raise ValueError(f"mixture dataset {self.root}: weight must be > 0, got {self.weight}")
        for cam, view in self.cameras.items():
            if view is not None and view not in VIEW_NAMES:
                raise ValueError(
                    f"mixture dataset {self.root}: camera {cam!r} mapped to {view!r}; expected one of "
                    f"{list(VIEW_NAMES)} or null (drop it)"
                )
        views = [v for v in self.cameras.values() if v is not None]
        if len(set(views)) != len(views):
            raise ValueError(f"mixture dataset {self.root}: two cameras map to one view in {self.cameras}")


@dataclass(frozen=True)
class MixtureConfig:
    """The datasets of a mixture (see the module docstring for the file format)."""

    datasets: tuple[MixtureSource, ...]

    def __post_init__(self) -> None:
        configio.check_fields(self)
        if not self.datasets:
            raise ValueError('a mixture needs at least one dataset ("datasets" is empty)')

    @classmethod
    def from_dict(cls, d: object, *, source: str | None = None) -> MixtureConfig:
        return configio.from_dict(cls, d, source=source)

    def to_dict(self) -> dict:
        return configio.to_dict(self)


def load_mixture(path: str | Path) -> MixtureConfig:
    """Read a mixture file; each dataset root is resolved against the file's folder and must stay inside it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise FileNotFoundError(f"mixture file {path} does not exist") from e
    except json.JSONDecodeError as e:
        raise ValueError(f"cannot parse mixture file {path}: {e}") from e
    cfg = MixtureConfig.from_dict(data, source=str(path))
    resolved = []
    for i, src in enumerate(cfg.datasets):
        root = confine(path.parent, src.root, f"{path} datasets[{i}].root").resolve()
        resolved.append(MixtureSource(str(root), src.weight, dict(src.cameras), dict(src.relabel)))
    return MixtureConfig(tuple(resolved))


def camera_views(source: MixtureSource, meta: DatasetMeta) -> dict[str, str]:
    """Dataset camera key -> standard view key. Raises naming an unmapped camera and the options."""
    names = [k.removeprefix(OBS_IMAGES_PREFIX) for k in meta.camera_keys]
    unknown = sorted(set(source.cameras) - set(names))
    if unknown:
        raise ValueError(f'mixture dataset {source.root}: "cameras" names {unknown}, not cameras of it: {names}')
    out: dict[str, str] = {}
    for name in names:
        view = source.cameras[name] if name in source.cameras else DEFAULT_VIEW_BY_NAME.get(name)
        if name not in source.cameras and view is None:
            raise ValueError(
                f'mixture dataset {source.root}: camera {name!r} has no standard view; map it in "cameras" to '
                f"one of {list(VIEW_NAMES)} (image1 top, image2 wrist, image3 side) or to null to drop it"
            )
        if view is not None:
            if OBS_IMAGES_PREFIX + view in out.values():
                raise ValueError(f"mixture dataset {source.root}: two cameras map to {view}: {names}")
            out[OBS_IMAGES_PREFIX + name] = OBS_IMAGES_PREFIX + view
    if not out:
        raise ValueError(f"mixture dataset {source.root}: every camera is dropped; keep at least one of {names}")
    return out


def view_order(camera_keys: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Camera keys sorted by their default standard view (top, wrist, side), the others after in their order.

    A policy fine-tuned from a mixture checkpoint on one dataset sees that dataset's cameras in this order,
    the order their views had in pretraining (absent views take no token positions, so the slots match)."""
    rank = {OBS_IMAGES_PREFIX + name: i for i, name in enumerate(DEFAULT_VIEW_BY_NAME)}
    return tuple(sorted(camera_keys, key=lambda k: rank.get(k, len(rank))))


def vector_dim(meta: DatasetMeta, key: str) -> int:
    feat = meta.features.get(key)
    if feat is None or len(feat["shape"]) != 1:
        raise ValueError(f"dataset {meta.root}: {key!r} must be a vector feature, got {feat}")
    return int(feat["shape"][0])


def relabelled_tasks(source: MixtureSource, meta: DatasetMeta) -> list[str]:
    """The dataset's task strings as training sees them (its relabel table applied)."""
    unknown = sorted(set(source.relabel) - set(meta.tasks))
    if unknown:
        raise ValueError(f"mixture dataset {source.root}: relabel names tasks {unknown} it does not have: {meta.tasks}")
    return [source.relabel.get(t, t) for t in meta.tasks]


def check_source(source: MixtureSource, meta: DatasetMeta, max_state_dim: int, max_action_dim: int) -> None:
    """Everything checkable from metadata: camera mapping, sizes within the model's slots, stats present."""
    camera_views(source, meta)
    relabelled_tasks(source, meta)
    for key, most in ((OBS_STATE, max_state_dim), (ACTION, max_action_dim)):
        dim = vector_dim(meta, key)
        if dim > most:
            raise ValueError(f"mixture dataset {source.root}: {key!r} has {dim} dims, more than the model's {most}")
        have = meta.stats.get(key, {})
        if not {"mean", "std"} <= set(have):
            raise ValueError(
                f"mixture dataset {source.root}: no mean/std of {key!r} in meta/stats.json (found {sorted(have)}); "
                f"run `smolvla stats {source.root}`"
            )
