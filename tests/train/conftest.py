"""Session fixtures of the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from .train_helpers import write_tiny_dataset


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("data") / "tiny")
