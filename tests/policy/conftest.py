"""Shared fixtures: a tiny Hugging Face SmolVLM backbone directory built locally with transformers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from smolvla.policy.testing import write_tiny_backbone


@pytest.fixture(scope="session")
def tiny_hf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SmolVLMForConditionalGeneration saved with save_pretrained, plus a byte-level tokenizer.json."""
    pytest.importorskip("transformers")
    return write_tiny_backbone(tmp_path_factory.mktemp("tiny_smolvlm"))


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    # The test machine is shared: one intra-op thread per test process avoids oversubscription.
    torch.set_num_threads(1)
