"""Shared fixtures of the serve tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def one_torch_thread():
    """Forwards run in the server's worker thread; two OpenMP threads on a loaded 2-core machine thrash."""
    torch = pytest.importorskip("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
