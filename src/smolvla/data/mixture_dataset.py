"""One dataset of a mixture seen in the standard layout (views, masks, padding, its own normalisation).

The layout and the mixture file are described in `smolvla.data.mixture`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch.utils.data import Dataset

from smolvla.data.meta import DatasetMeta
from smolvla.data.mixture import VIEWS, MixtureSource, camera_views, check_source, relabelled_tasks, vector_dim
from smolvla.types import ACTION, ACTION_DIM_IS_PAD, ACTION_IS_PAD, OBS_IMAGES_IS_PAD, OBS_STATE

NORM_EPS = 1e-8  # the policy's default norm_eps: (x - mean) / (std + eps)


def resize_with_pad(img: torch.Tensor, size: int) -> torch.Tensor:
    """float32[3, h, w] -> float32[3, size, size]: the policy's resize (aspect kept, padded left/top with 0)."""
    _, h, w = img.shape
    if (h, w) == (size, size):
        return img
    ratio = max(w / size, h / size)
    new_h, new_w = int(h / ratio), int(w / ratio)
    resized = F.interpolate(img[None], size=(new_h, new_w), mode="bilinear", align_corners=False)[0]
    return F.pad(resized, (size - new_w, 0, size - new_h, 0), value=0.0)


class MixtureSourceDataset(Dataset):
    """One dataset of a mixture seen in the standard layout (see the module docstring).

    base: the dataset's frames with an action chunk (LeRobot item keys); meta: its metadata.
    """

    def __init__(
        self,
        base: Dataset,
        meta: DatasetMeta,
        source: MixtureSource,
        index: int,
        image_size: int,
        max_state_dim: int,
        max_action_dim: int,
    ) -> None:
        check_source(source, meta, max_state_dim, max_action_dim)
        self.base, self.source, self.index = base, source, index
        self.image_size, self.max_state_dim, self.max_action_dim = image_size, max_state_dim, max_action_dim
        self.views = camera_views(source, meta)  # camera key -> view key
        self.relabel = dict(zip(meta.tasks, relabelled_tasks(source, meta), strict=True))
        self.stats = {
            k: {s: torch.as_tensor(meta.stats[k][s], dtype=torch.float32) for s in ("mean", "std")}
            for k in (OBS_STATE, ACTION)
        }
        self.action_dim = vector_dim(meta, ACTION)

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def _vector(self, raw: torch.Tensor, key: str, size: int) -> torch.Tensor:
        st = self.stats[key]
        x = (raw.float() - st["mean"]) / (st["std"] + NORM_EPS)
        return F.pad(x, (0, size - x.shape[-1]))

    def __getitem__(self, i: int) -> dict:
        raw = self.base[i]
        item: dict = {}
        present = {view: cam for cam, view in self.views.items()}
        blank = torch.zeros(3, self.image_size, self.image_size)
        for view in VIEWS:
            item[view] = resize_with_pad(raw[present[view]], self.image_size) if view in present else blank
        item[OBS_IMAGES_IS_PAD] = torch.tensor([view not in present for view in VIEWS])
        state = raw[OBS_STATE]
        item[OBS_STATE] = self._vector(state[-1] if state.ndim == 2 else state, OBS_STATE, self.max_state_dim)
        item[ACTION] = self._vector(raw[ACTION], ACTION, self.max_action_dim)
        item[ACTION_IS_PAD] = raw[ACTION_IS_PAD]
        item[ACTION_DIM_IS_PAD] = torch.arange(self.max_action_dim) >= self.action_dim
        item["task"] = self.relabel[raw["task"]]
        item["source_index"] = torch.tensor(self.index)
        for key in ("index", "episode_index", "frame_index", "timestamp"):
            item[key] = raw[key]
        return item
