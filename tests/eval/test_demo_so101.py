"""`smolvla demo --benchmark so101`: the three SO-101 tasks through the async engine, with a tiny random policy
built here (the trained one is an asset that may not be committed yet)."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest
from eval_helpers import require_so101
from typer.testing import CliRunner

import smolvla.envs  # noqa: F401  (selects the headless GL backend before any simulator import)
from smolvla.cli import demo as demo_cli
from smolvla.cli.main import app
from smolvla.policy.checkpoint import save_policy

REPO = Path(__file__).resolve().parents[2]


def _demo(*args: str):
    return CliRunner().invoke(app, ["demo", *args])


def test_the_so101_asset_has_a_documented_home():
    assert demo_cli.DEMO_BENCHMARKS["so101"].asset == REPO / "assets" / "so101_policy" == demo_cli.SO101_ASSET
    assert demo_cli.DEMO_BENCHMARKS["metaworld"].asset == REPO / "assets" / "demo_policy"
    assert (REPO / demo_cli.SO101_RECIPE).is_file()


def test_a_missing_so101_policy_is_one_line_saying_where_and_how(tmp_path):
    missing = tmp_path / "so101_policy"
    result = _demo("--benchmark", "so101", "--asset", str(missing), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        f"error: no SO-101 policy at {missing} (config.json and stats.safetensors): make one with "
        f"scripts/train_so101_policy.sh (--update-asset writes assets/so101_policy) or copy a trained policy folder "
        f"to {missing}"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--benchmark", "so101", "--retrain"], "the SO-101 policy is trained by scripts/train_so101_policy.sh"),
        (["--split", "ood"], "metaworld has no scene splits; --split is for so101"),
        (["--benchmark", "so101", "--tasks", "pick-plase"], "did you mean 'pick-place'"),
        (["--benchmark", "so-101"], "'so-101' is not one of metaworld, so101"),
    ],
)
def test_argument_errors(tmp_path, args, message):
    result = _demo(*args, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line


def test_a_committed_so101_policy_is_loaded_with_its_camera_size(tmp_path):
    asset = save_policy(demo_cli._quick_policy("so101"), tmp_path / "asset")
    (asset / "provenance.json").write_text(json.dumps({"recipe": "scripts/train_so101_policy.sh"}))
    policy, meta, image_size = demo_cli._policy_for("so101", asset, False, False, tmp_path / "out", 1)
    assert policy.config.camera_keys == ("observation.images.top", "observation.images.wrist")
    provenance = {"recipe": "scripts/train_so101_policy.sh"}
    assert meta == {"policy": str(asset), "trained_here": False, "provenance": provenance}
    assert image_size == policy.config.image_size == 64  # no training run beside it: its input size


@pytest.mark.sim
def test_quick_so101_demo_plays_through_the_engine_with_crisp_videos(tmp_path):
    require_so101()
    out = tmp_path / "demo"
    result = _demo("--benchmark", "so101", "--quick", "--no-sync", "--fps", "100", "--out", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    meta = report["meta"]
    assert (meta["benchmark"], meta["split"], meta["image_size"], meta["first_seed"]) == ("so101", "id", 64, 1000)
    (episode,) = report["episodes"]
    assert episode["env_name"] == "so101/pick-place" and episode["steps"] <= 12
    assert set(episode["stage_scores"]) == {"pick", "place"} and "per_group_success_rate" not in report
    (async_run,) = report["engine"].values()
    assert async_run["chunks"] >= 1 and 0.0 <= async_run["mean_score"] <= 1.0
    (video,) = (out / "videos").glob("*.mp4")
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        assert (stream.height, stream.width) == (256, 512)  # the env's two 256 px views, not the 64 px input
    assert "score" in result.output and "async:" in result.output and "pick-place" in result.output
