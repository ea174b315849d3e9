"""The latency benchmark's FLOP accounting and a tiny end-to-end run."""

from __future__ import annotations

import json
import os

import pytest

from smolvla.model.config import get_config
from smolvla.model.smolvla import SmolVLAModel


@pytest.fixture(scope="module")
def latency(load_benchmark):
    return load_benchmark("latency")


def test_full_size_flops_match_spec_budget(latency) -> None:
    # Spec: ~580 GFLOP per chunk = vision 2 x 212, prefix 56, expert 10 x 10 (2 cameras, 48 tokens).
    f = latency.chunk_flops(get_config("smolvla_base"), cameras=2, tokens=48, batch=1)
    assert f["vision_per_camera"] / 1e9 == pytest.approx(212, rel=0.03)
    assert f["prefix"] / 1e9 == pytest.approx(56, rel=0.05)
    assert f["denoise_step"] / 1e9 == pytest.approx(10, rel=0.05)


def test_tiny_run_reports_every_field(latency) -> None:
    pytest.importorskip("onnxruntime")
    engines = "torch-fp32,torch-bf16,onnx-fp32,onnx-int8"
    args = latency.parse_args(
        ["--preset", "tiny", "--threads", "1", "--tokens", "8", "--steps", "2", "--engines", engines]
    )
    args.repeats, args.warmup = 1, 0
    out = json.loads(json.dumps(latency.run(args)))
    assert list(out["engines"]) == engines.split(",")
    for name, result in out["engines"].items():
        assert result["chunk_s"]["median"] > 0 and len(result["chunk_s"]["all"]) == 1, name
        assert result["x_compute_floor"] > 0, name
    assert set(out["engines"]["torch-fp32"]["stages_s"]) == {"vision_per_camera", "prefix", "denoise_step"}
    assert set(out["engines"]["onnx-fp32"]["stages_s"]) == {"prefix_incl_vision", "denoise_step"}
    # The exported graphs compute the torch model's chunk; bf16 and int8 move it, but not far.
    assert out["engines"]["onnx-fp32"]["max_abs_action_diff_vs_torch_fp32"] < 1e-4
    assert 0 < out["engines"]["onnx-int8"]["max_abs_action_diff_vs_torch_fp32"] < 0.1
    assert 0 < out["engines"]["torch-bf16"]["max_abs_action_diff_vs_torch_fp32"] < 0.1
    assert out["gflop"]["chunk"] > 0 and out["matmul_fp32_gflops"] > 0 and out["peak_rss_mb"] > 0
    assert out["parameters"] == sum(p.numel() for p in SmolVLAModel(get_config("tiny", max_lang_tokens=8)).parameters())


def test_unknown_engine_is_refused(latency) -> None:
    with pytest.raises(SystemExit, match=r"--engines: unknown \['onnx-fp16'\]"):
        latency.run(latency.parse_args(["--preset", "tiny", "--engines", "onnx-fp16"]))


@pytest.mark.slow
def test_vs_lerobot_times_the_same_model(latency) -> None:
    # LeRobot derives its expert MLP width with a multiple of 256, which only the full-size preset uses.
    if not os.environ.get("SMOLVLA_LEROBOT_SRC"):
        pytest.skip("set SMOLVLA_LEROBOT_SRC to an unpacked lerobot 0.6.1 wheel (tests/model/test_lerobot_parity.py)")
    argv = ["--image-size", "64", "--threads", "1", "--steps", "2", "--engines", "torch-fp32", "--vs-lerobot"]
    args = latency.parse_args(argv)
    args.repeats, args.warmup = 1, 0
    out = latency.run(args)
    assert out["engines"]["lerobot-fp32"]["max_abs_action_diff_vs_torch_fp32"] < 1e-4
    assert out["x_lerobot_fp32"]["lerobot-fp32"] == 1.0 and out["x_lerobot_fp32"]["torch-fp32"] > 0
