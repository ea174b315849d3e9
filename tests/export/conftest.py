"""Shared fixtures of the export tests: a tiny policy with two cameras and an empty slot, exported once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

# The LeRobot checkpoint writer and the tiny-dataset writer live beside the tests that own them.
TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS / "policy"), str(TESTS / "train")]

CAMS = ("observation.images.top", "observation.images.wrist")


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_hf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SmolVLM backbone dir (as tests/policy's fixture), for building LeRobot checkpoints."""
    pytest.importorskip("transformers")
    from smolvla.policy.testing import write_tiny_backbone

    return write_tiny_backbone(tmp_path_factory.mktemp("tiny_smolvlm"))


@pytest.fixture(scope="module")
def tiny_policy():
    from smolvla.policy.testing import make_tiny_policy

    return make_tiny_policy(camera_keys=CAMS, empty_cameras=1, seed=3)


@pytest.fixture(scope="module")
def tiny_export(tiny_policy, tmp_path_factory) -> Path:
    from smolvla.export.exporter import export_policy

    return export_policy(tiny_policy, tmp_path_factory.mktemp("onnx") / "fp32", source="tiny")
