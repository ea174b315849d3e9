"""Shared fixtures for model tests: the tiny preset and a random batch with padding in it."""

from __future__ import annotations

import pytest
import torch
from model_batch import Batch, make_batch

from smolvla.model.config import ModelConfig, get_config
from smolvla.model.smolvla import SmolVLAModel


@pytest.fixture(scope="module")
def tiny_cfg() -> ModelConfig:
    return get_config("tiny")


@pytest.fixture(scope="module")
def tiny_model(tiny_cfg: ModelConfig) -> SmolVLAModel:
    torch.manual_seed(0)
    # Larger-than-default weights so every path moves the outputs measurably.
    return SmolVLAModel(tiny_cfg).init_weights(seed=0, std=0.1).eval()


@pytest.fixture
def batch(tiny_cfg: ModelConfig) -> Batch:
    return make_batch(tiny_cfg)


@pytest.fixture(autouse=True)
def _single_thread():
    """Tiny models gain nothing from threads, and on a shared CPU extra threads only contend (10x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
