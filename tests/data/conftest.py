"""Fixtures of the data tests: LeRobot-written datasets from /work/shared (beside the checkout) and tiny
datasets written by our own writer."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_helpers import FIXTURES, V30, copy_tree, write_dataset


@pytest.fixture
def fixtures() -> Path:
    if not (V30 / "meta" / "info.json").is_file():
        pytest.skip(f"LeRobot fixtures not found at {FIXTURES.resolve()} (expected /work/shared beside the checkout)")
    return FIXTURES


@pytest.fixture
def v30_copy(fixtures, tmp_path) -> Path:
    return copy_tree(V30, tmp_path / "v30")


@pytest.fixture
def written(tmp_path) -> Path:
    return write_dataset(tmp_path / "ours")
