"""Fixtures of the data tests: LeRobot-written datasets committed under tests/fixtures, and tiny datasets
written by our own writer."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_helpers import FIXTURES, REF, V21, V30, copy_tree, write_dataset


@pytest.fixture
def fixtures() -> Path:
    # A missing fixture is a broken checkout, not an optional feature: fail, never skip the parity tests.
    missing = [str(p) for p in (V30 / "meta" / "info.json", V21 / "meta" / "info.json", REF) if not p.exists()]
    if missing:
        pytest.fail(f"LeRobot fixtures missing: {missing} (they are committed under tests/fixtures/lerobot)")
    return FIXTURES


@pytest.fixture
def v30_copy(fixtures, tmp_path) -> Path:
    return copy_tree(V30, tmp_path / "v30")


@pytest.fixture
def written(tmp_path) -> Path:
    return write_dataset(tmp_path / "ours")
