"""Save and load an `Episode` as one .npz file (plain arrays plus a JSON header; nothing pickled).

Used to hand episodes from data-generation worker processes to the process that writes the dataset.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from smolvla.envs.rollout import Episode

_HEADER = "__episode__"
_REWARDS = "__rewards__"


def save_episode(episode: Episode, path: Path) -> None:
    header = {
        "env_name": episode.env_name,
        "task": episode.task,
        "seed": episode.seed,
        "fps": episode.fps,
        "success": episode.success,
        "stage_scores": episode.stage_scores,
    }
    arrays = {_HEADER: np.array(json.dumps(header)), _REWARDS: episode.rewards, **episode.frames}
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def load_episode(path: Path) -> Episode:
    with np.load(path, allow_pickle=False) as z:
        if _HEADER not in z.files:
            raise ValueError(f"{path}: not an episode file (no {_HEADER!r} entry)")
        header = json.loads(str(z[_HEADER]))
        frames = {k: z[k] for k in z.files if k not in (_HEADER, _REWARDS)}
        rewards = z[_REWARDS]
    episode = Episode(frames=frames, rewards=rewards, **header)
    episode.validate()
    return episode
