"""The committed demo policy is what the "demo" preset and the recipe say it is, and small enough to commit."""

from __future__ import annotations

from pathlib import Path

import pytest

from smolvla.cli.demo import _so101_policy
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


SO101_ASSET = ASSET.parent / "so101_policy"


def test_so101_asset_is_the_suites_multitask_policy_and_small_enough() -> None:
    """The committed asset (`smolvla demo --benchmark so101` plays it) must fit the suite and the budget; in a
    checkout without it the demo refuses with the line naming the recipe."""
    if not SO101_ASSET.is_dir():
        recipe = r"no SO-101 policy at .*make one with scripts/train_so101_policy\.sh"
        with pytest.raises(FileNotFoundError, match=recipe):
            _so101_policy(SO101_ASSET)
        return
    size = sum(f.stat().st_size for f in SO101_ASSET.iterdir())
    assert size < 25 * 2**20, f"SO-101 asset is {size / 2**20:.1f} MiB, over the 25 MiB budget"
    policy = load_policy(SO101_ASSET)
    assert policy.config.camera_keys == ("observation.images.top", "observation.images.wrist")
    assert (policy.config.state_dim, policy.config.action_dim) == (6, 6)
    from smolvla.envs.so101_suite.tasks import TASKS

    for spec in TASKS.values():  # every task's instruction fits its token budget (else the tokenizer raises)
        policy.tokenizer([spec.instruction(list(spec.cube_colours))])
