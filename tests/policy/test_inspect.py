"""`smolvla inspect-checkpoint`: summary of our and LeRobot's checkpoint dirs from headers only."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from smolvla.cli.main import app
from smolvla.policy.inspect import inspect_checkpoint
from smolvla.policy.testing import make_tiny_policy


def test_inspect_our_checkpoint(tmp_path: Path) -> None:
    policy = make_tiny_policy(state_dim=4)
    policy.save_pretrained(tmp_path / "p")
    info = inspect_checkpoint(tmp_path / "p")
    assert info["format"] == "smolvla"
    assert info["parameters"] == sum(p.numel() for p in policy.model.parameters())
    assert info["stats_keys"] == ["action.mean", "action.std", "observation.state.mean", "observation.state.std"]
    result = CliRunner().invoke(app, ["inspect-checkpoint", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    assert f"parameters:  {info['parameters']:,}" in result.output and "observation.state.std" in result.output


def test_inspect_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="is not a checkpoint directory"):
        inspect_checkpoint(tmp_path)
    result = CliRunner().invoke(app, ["inspect-checkpoint", str(tmp_path)])
    assert result.exit_code == 1 and "is not a checkpoint directory" in result.output
