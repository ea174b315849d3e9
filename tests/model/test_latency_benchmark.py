"""The latency benchmark's FLOP accounting and a tiny end-to-end run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from smolvla.model.config import get_config
from smolvla.model.smolvla import SmolVLAModel

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "latency.py"


@pytest.fixture(scope="module")
def latency():
    spec = importlib.util.spec_from_file_location("latency_benchmark", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_full_size_flops_match_spec_budget(latency) -> None:
    # Spec: ~580 GFLOP per chunk = vision 2 x 212, prefix 56, expert 10 x 10 (2 cameras, 48 tokens).
    f = latency.chunk_flops(get_config("smolvla_base"), cameras=2, tokens=48, batch=1)
    assert f["vision_per_camera"] / 1e9 == pytest.approx(212, rel=0.03)
    assert f["prefix"] / 1e9 == pytest.approx(56, rel=0.05)
    assert f["denoise_step"] / 1e9 == pytest.approx(10, rel=0.05)


def test_tiny_run_reports_every_field(latency) -> None:
    args = latency.parse_args(["--preset", "tiny", "--threads", "1", "--tokens", "8", "--steps", "2"])
    args.repeats, args.warmup = 1, 0
    out = json.loads(json.dumps(latency.run(args)))
    assert out["chunk_s"]["median"] > 0 and len(out["chunk_s"]["all"]) == 1
    assert set(out["stages_s"]) == {"vision_per_camera", "prefix", "denoise_step"}
    assert out["gflop"]["chunk"] > 0 and out["matmul_fp32_gflops"] > 0 and out["peak_rss_mb"] > 0
    assert out["parameters"] == sum(p.numel() for p in SmolVLAModel(get_config("tiny")).parameters())
