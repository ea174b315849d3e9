"""The committed demo policy is what the "demo" preset and the recipe say it is, and small enough to commit."""

from __future__ import annotations

from pathlib import Path

from smolvla.model.config import get_config
from smolvla.policy.checkpoint import load_policy

ASSET = Path(__file__).resolve().parents[2] / "assets" / "demo_policy"


def test_asset_matches_demo_preset_and_size_limit() -> None:
    # The asset is committed: its absence is a broken checkout, so fail rather than skip.
    assert ASSET.is_dir(), f"committed demo policy missing: {ASSET}"
    size = sum(f.stat().st_size for f in ASSET.iterdir())
    assert size < 25 * 2**20, f"demo asset is {size / 2**20:.1f} MiB, over the 25 MiB budget"
    policy = load_policy(ASSET)
    assert policy.config.model == get_config("demo")
    assert policy.config.camera_keys == ("observation.images.corner2",)
    assert (policy.config.state_dim, policy.config.action_dim) == (4, 4)
