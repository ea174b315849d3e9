"""`smolvla datagen`: argument errors and a tiny end-to-end run (Meta-World reach, 2 episodes)."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from smolvla.cli import datagen as datagen_cli


@pytest.fixture()
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test root so `datagen` stays a named subcommand."""

    datagen_cli.register(app)
    return app


def test_unknown_task_is_reported_with_suggestion(app, tmp_path) -> None:
    result = CliRunner().invoke(app, ["datagen", "metaworld", "--tasks", "reach-v2", "--out", str(tmp_path / "d")])
    assert result.exit_code != 0
    assert "unknown metaworld task 'reach-v2'; did you mean 'reach-v3'" in str(result.exception)


def test_benchmark_without_expert_is_refused(app, tmp_path) -> None:
    result = CliRunner().invoke(app, ["datagen", "robosuite", "--out", str(tmp_path / "d")], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert "no scripted expert for 'robosuite'; expected one of ['metaworld', 'so101', 'libero']" in result.output


def test_expert_noise_is_refused_where_the_expert_takes_none(app, tmp_path) -> None:
    args = ["datagen", "metaworld", "--expert-noise", "0.02", "--out", str(tmp_path / "d")]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert "metaworld's experts take no approach noise; --expert-noise is for so101" in result.output
    assert not (tmp_path / "d").exists()


@pytest.mark.sim
def test_datagen_end_to_end(app, tmp_path, require_sim) -> None:
    require_sim("metaworld")
    pytest.importorskip("torch")
    out = tmp_path / "demos"
    args = ["datagen", "metaworld", "--tasks", "reach-v3", "--episodes", "2", "--out", str(out)]
    args += ["--image-size", "8", "--workers", "1", "--max-steps", "150"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "datagen_report.json").read_text())
    assert report["episodes_written"] == 2 and report["short_tasks"] == []
    assert report["expert_success_rate"]["metaworld/reach-v3"]["successes"] >= 2
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 2 and info["features"]["observation.images.corner2"]["shape"] == [8, 8, 3]
    again = CliRunner().invoke(app, args, env={"COLUMNS": "300"})  # wide: the error box must not wrap
    assert again.exit_code == 2 and "already holds a dataset; choose a new --out" in again.output


@pytest.mark.slow
@pytest.mark.sim
def test_datagen_libero_writes_the_libero_layout(app, tmp_path, require_sim) -> None:
    require_sim("libero.libero")
    pytest.importorskip("torch")
    out = tmp_path / "libero"
    args = ["datagen", "libero", "--suites", "libero_spatial/0", "--episodes", "1", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--image-size", "16", "--workers", "1"])
    assert result.exit_code == 0, result.output
    info = json.loads((out / "meta" / "info.json").read_text())
    feats = info["features"]
    assert info["total_episodes"] == 1 and info["fps"] == 20 and info["codebase_version"] == "v3.0"
    for cam in ("agentview", "robot0_eye_in_hand"):
        assert feats[f"observation.images.{cam}"]["shape"] == [16, 16, 3]
    assert feats["observation.state"]["shape"] == [8] and feats["action"]["shape"] == [7]
