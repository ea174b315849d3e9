"""Tiny datasets of different layouts (camera names, state sizes) and mixture files over them."""

from __future__ import annotations

import json
from pathlib import Path

from .train_helpers import write_tiny_dataset


def features(cams: tuple[str, ...], dim: int, hw: int = 32) -> dict:
    video = {"dtype": "video", "shape": [hw, hw, 3], "names": ["height", "width", "channels"]}
    return {f"observation.images.{c}": video for c in cams} | {
        "observation.state": {"dtype": "float32", "shape": [dim]},
        "action": {"dtype": "float32", "shape": [dim]},
    }


def write_layouts(root: Path) -> dict[str, Path]:
    """Two community-style datasets: 'laptop'+'phone' cameras with 6 joints; one 'up' camera with 4 dims and a
    vague task string."""
    return {
        "so101_laptop": write_tiny_dataset(
            root / "so101_laptop", episodes=2, length=10, seed=1, features=features(("laptop", "phone"), 6)
        ),
        "arm4_up": write_tiny_dataset(
            root / "arm4_up", episodes=2, length=8, seed=2, features=features(("up",), 4), tasks=("Hold",)
        ),
    }


MIX = {
    "datasets": [
        {"root": "so101_laptop", "weight": 3.0, "cameras": {"laptop": "image1", "phone": "image2"}},
        {"root": "arm4_up", "weight": 1.0, "cameras": {"up": "image1"}, "relabel": {"Hold": "hold the cube up"}},
    ]
}


def write_mixture_file(root: Path, mix: dict = MIX) -> Path:
    path = root / "mix.json"
    path.write_text(json.dumps(mix))
    return path
