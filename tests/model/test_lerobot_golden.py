"""Parity with LeRobot 0.6.1's own SmolVLA (VLAFlowMatching) through a committed golden file, fp32 on CPU.

The golden file holds the weights, inputs (an absent camera, padded language), noise and LeRobot's outputs;
scripts/make_lerobot_golden.py wrote it, and tests/model/test_lerobot_parity.py (slow, needs LeRobot)
regenerates it to check it is still what LeRobot computes.
"""

from __future__ import annotations

import json

import pytest
import torch
from lerobot_golden import ATOL_ACTIONS, GOLDEN, TOL_LOSS, Golden, ours_on, read_golden


@pytest.fixture(scope="module")
def golden() -> Golden:
    return read_golden()


def test_golden_file_says_which_lerobot_wrote_it() -> None:
    sidecar = json.loads(GOLDEN.with_suffix(".json").read_text())
    assert sidecar["lerobot_version"] == "0.6.1" and "make_lerobot_golden.py" in sidecar["command"]


def test_sampled_actions_match_lerobot(golden: Golden) -> None:
    actions, _ = ours_on(golden)
    torch.testing.assert_close(actions, golden.actions, rtol=0, atol=ATOL_ACTIONS)


def test_unreduced_loss_matches_lerobot(golden: Golden) -> None:
    _, loss = ours_on(golden)
    torch.testing.assert_close(loss, golden.loss, rtol=TOL_LOSS, atol=TOL_LOSS)


def test_golden_inputs_exercise_the_masks(golden: Golden) -> None:
    """The absent camera and the padded tokens move the outputs far beyond the tolerance, so a model that
    ignored either mask could not pass the two tests above."""
    all_cameras = torch.ones_like(golden.inputs["image_masks"])
    all_tokens = torch.ones_like(golden.inputs["lang_masks"])
    for replaced in ({"image_masks": all_cameras}, {"lang_masks": all_tokens}):
        actions, loss = ours_on(golden, **replaced)
        assert (actions - golden.actions).abs().max() > 100 * ATOL_ACTIONS, list(replaced)
        assert (loss - golden.loss).abs().max() > 100 * TOL_LOSS * (1 + golden.loss.abs().max()), list(replaced)
