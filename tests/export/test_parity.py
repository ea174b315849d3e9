"""The exported graphs + numpy runtime give the torch policy's actions (fixed noise) within 1e-4."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from export_helpers import torch_actions, wire_batch

from smolvla.deploy.manifest import DENOISE_ONNX, PREFIX_ONNX, RuntimeSpec, context_names
from smolvla.deploy.onnx_policy import OnnxPolicy

TOL = 1e-4


def _noise(policy, batch: int, seed: int = 1) -> np.ndarray:
    shape = (batch, policy.config.chunk_size, policy.config.model.max_action_dim)
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("batch", [1, 2])
def test_tiny_preset_matches_torch(tiny_policy, tiny_export: Path, batch: int) -> None:
    onnx_policy = OnnxPolicy(tiny_export, threads=1)
    images, state, tasks = wire_batch(tiny_policy.config.camera_keys, 6, batch=batch)
    noise = _noise(tiny_policy, batch)
    got = onnx_policy.predict(images, state, tasks, noise=noise)
    want = torch_actions(tiny_policy, images, state, tasks, noise)
    assert got.shape == want.shape == (batch, 10, 6) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)


def test_export_dir_layout_and_graphs(tiny_policy, tiny_export: Path) -> None:
    spec = RuntimeSpec.read(tiny_export)
    assert spec.camera_keys == tiny_policy.config.camera_keys and spec.empty_cameras == 1
    assert spec.precision == "fp32" and spec.expert_layers == 4 and spec.num_steps == tiny_policy.config.model.num_steps
    prefix, denoise = onnx.load(str(tiny_export / PREFIX_ONNX)), onnx.load(str(tiny_export / DENOISE_ONNX))
    names = context_names(4)
    assert [o.name for o in prefix.graph.output] == list(names)
    assert [i.name for i in denoise.graph.input] == ["x_t", "time", *names]
    assert prefix.opset_import[0].version >= 17
    assert json.loads((tiny_export / "config.json").read_text()) == tiny_policy.config.to_dict()


def test_imported_lerobot_checkpoint_matches_torch(tiny_hf_dir: Path, tmp_path: Path) -> None:
    from lerobot_fixture import write_lerobot_checkpoint
    from test_lerobot import _source_policy, lerobot_config

    from smolvla.export.exporter import export_policy
    from smolvla.policy.policy import SmolVLAPolicy

    source = _source_policy(tiny_hf_dir)
    path = write_lerobot_checkpoint(source, tmp_path / "lerobot", lerobot_config(tiny_hf_dir))
    imported = SmolVLAPolicy.from_pretrained(path)
    out = export_policy(imported, tmp_path / "onnx", source="lerobot")
    images, state, tasks = wire_batch(imported.config.camera_keys, 6, batch=2)
    noise = _noise(imported, 2)
    got = OnnxPolicy(out, threads=1).predict(images, state, tasks, noise=noise)
    np.testing.assert_allclose(got, torch_actions(imported, images, state, tasks, noise), atol=TOL, rtol=0)
