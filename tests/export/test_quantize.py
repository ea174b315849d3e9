"""`smolvla export` and its precisions: int8 (dynamic, static with dataset calibration) and fp16."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from export_helpers import wire_batch
from typer.testing import CliRunner

from smolvla.cli.main import app
from smolvla.deploy.manifest import DENOISE_ONNX, GUIDE_ONNX, PREFIX_ONNX, RuntimeSpec
from smolvla.deploy.onnx_policy import OnnxPolicy
from smolvla.export.calibration import dataset_samples
from smolvla.export.exporter import export_policy


def _ops(path: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def _actions(directory: Path, policy) -> np.ndarray:
    images, state, tasks = wire_batch(policy.config.camera_keys, 6, batch=2, seed=5)
    noise = np.random.default_rng(2).standard_normal((2, 10, 32)).astype(np.float32)
    return OnnxPolicy(directory, threads=1).predict(images, state, tasks, noise=noise)


@pytest.fixture(scope="module")
def checkpoint(tiny_policy, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "policy"
    tiny_policy.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from train_helpers import write_tiny_dataset

    return write_tiny_dataset(tmp_path_factory.mktemp("data") / "ds", episodes=2, length=6)


@pytest.mark.parametrize(
    ("precision", "marker_op"),
    [("int8-dynamic", "DynamicQuantizeLinear"), ("int8-static", "QuantizeLinear"), ("fp16", "Cast")],
)
def test_cli_export_precisions(checkpoint, dataset, tiny_policy, tiny_export, tmp_path, precision, marker_op) -> None:
    out = tmp_path / precision
    args = ["export", str(checkpoint), "--out", str(out), "--quantize", precision]
    if precision == "int8-static":
        args += ["--calibration", str(dataset), "--calibration-frames", "4"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    line = json.loads(result.output.strip().splitlines()[-1])
    assert line["precision"] == precision and set(line["bytes"]) >= {PREFIX_ONNX, DENOISE_ONNX, "export.json"}
    assert RuntimeSpec.read(out).precision == precision
    for graph in (PREFIX_ONNX, DENOISE_ONNX):
        assert marker_op in _ops(out / graph)
    if precision.startswith("int8"):  # int8 matmul weights (the tiny graph also holds an unquantised embedding)
        assert (out / PREFIX_ONNX).stat().st_size < 0.75 * (tiny_export / PREFIX_ONNX).stat().st_size
    got, ref = _actions(out, tiny_policy), _actions(tiny_export, tiny_policy)
    err = np.abs(got - ref).max()
    assert np.isfinite(got).all() and 0 < err < 0.2, err  # changed, but close (random weights: ~0.01-0.05)


def test_cli_export_fp32_writes_a_servable_dir(checkpoint, tmp_path) -> None:
    result = CliRunner().invoke(app, ["export", str(checkpoint), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "config.json",
        DENOISE_ONNX,
        "export.json",
        GUIDE_ONNX,
        PREFIX_ONNX,
        "stats.safetensors",
        "tokenizer.json",
    ]


def test_int8_static_needs_a_calibration_dataset(checkpoint, tmp_path) -> None:
    result = CliRunner().invoke(
        app, ["export", str(checkpoint), "--out", str(tmp_path / "o"), "--quantize", "int8-static"]
    )
    assert result.exit_code != 0 and "int8-static needs --calibration DATASET" in result.output
    assert not (tmp_path / "o").exists()


def test_export_policy_errors(tiny_policy, tmp_path) -> None:
    with pytest.raises(ValueError, match="int8-static needs calibration samples"):
        export_policy(tiny_policy, tmp_path / "a", precision="int8-static")
    with pytest.raises(ValueError, match="calibration samples are for int8-static only, not fp16"):
        export_policy(tiny_policy, tmp_path / "b", precision="fp16", calibration=[])
    from smolvla.policy.policy import SmolVLAPolicy

    bare = SmolVLAPolicy(tiny_policy.config, tiny_policy.stats, None, model=tiny_policy.model)
    with pytest.raises(ValueError, match="the policy has no tokenizer"):
        export_policy(bare, tmp_path / "c")
    assert not any(tmp_path.iterdir())


def test_calibration_samples_come_from_the_dataset(dataset) -> None:
    cams = ("observation.images.top", "observation.images.wrist")
    samples = dataset_samples(dataset, cams, 3)
    assert len(samples) == 3
    images, state, task = samples[0]
    assert images[cams[0]].shape == (1, 32, 32, 3) and images[cams[0]].dtype == np.uint8
    assert state.shape == (1, 6) and state.dtype == np.float32 and task == "pick"
    with pytest.raises(ValueError, match=r"lacks the policy's cameras \['observation.images.side'\]"):
        dataset_samples(dataset, ("observation.images.side",), 3)


def test_runtime_spec_is_read_strictly(tiny_export, tmp_path) -> None:
    data = json.loads((tiny_export / "export.json").read_text())
    (tmp_path / "export.json").write_text(json.dumps({**data, "version": 99}))
    with pytest.raises(ValueError, match="not a smolvla-onnx v1 export: format 'smolvla-onnx', version 99"):
        RuntimeSpec.read(tmp_path)
    (tmp_path / "export.json").write_text(json.dumps({k: v for k, v in data.items() if k != "num_steps"}))
    with pytest.raises(ValueError, match="num_steps"):
        RuntimeSpec.read(tmp_path)
    (tmp_path / "export.json").write_text(json.dumps({**data, "precision": "int4"}))
    with pytest.raises(ValueError, match="precision"):
        RuntimeSpec.read(tmp_path)
