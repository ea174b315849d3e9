"""`smolvla stats` and `smolvla relabel` (registered on a fresh Typer app: only this area's commands)."""

from __future__ import annotations

import json

import numpy as np
import typer
from data_helpers import V30, copy_tree, write_dataset
from typer.testing import CliRunner

from smolvla.cli.data import register


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    app.command("noop", hidden=True)(lambda: None)  # keep Typer in multi-command mode
    return app


def test_stats_command_rewrites_identical_numeric_stats(fixtures, tmp_path):
    root = copy_tree(V30, tmp_path / "v30")
    before = json.loads((root / "meta/stats.json").read_text())
    result = CliRunner().invoke(_app(), ["stats", str(root), "--no-cameras"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "observation.state" in result.output and "(written)" in result.output
    after = json.loads((root / "meta/stats.json").read_text())
    for key in ("action", "index", "timestamp"):
        for name in before[key]:
            np.testing.assert_allclose(after[key][name], before[key][name], rtol=1e-11, atol=0)
    assert after["observation.images.top"] == before["observation.images.top"]  # cameras left alone


def test_stats_command_on_v21_refuses_to_write(fixtures):
    result = CliRunner().invoke(_app(), ["stats", str(V30.parents[1] / "v21" / "so100_2cam")])
    assert isinstance(result.exception, ValueError) and "only for v3.0 datasets, got v2.1" in str(result.exception)
    result = CliRunner().invoke(_app(), ["stats", str(V30.parents[1] / "v21" / "so100_2cam"), "--no-write"])
    assert result.exit_code == 0, result.output


def test_relabel_command(tmp_path):
    root = write_dataset(tmp_path / "d", lengths=(5, 4), tasks=["Hold", "Pick up the red cube."])
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"Hold": "Hold the red cube still."}))
    result = CliRunner().invoke(
        _app(), ["relabel", str(root), "--rules", str(rules), "--dry-run"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "Hold the red cube still." in result.output and "1 changes; tasks 2 -> 2" in result.output
    assert not (root / "meta/tasks_original.parquet").exists()
    result = CliRunner().invoke(_app(), ["relabel", str(root), "--rules", str(rules)])
    assert result.exit_code == 0 and (root / "meta/tasks_original.parquet").exists()
    result = CliRunner().invoke(_app(), ["relabel", str(root)])
    assert result.exit_code != 0 and "exactly one of --rules FILE or --vlm MODEL_DIR" in result.output


def test_relabel_rules_rewrite_ordinary_tasks_without_all(tmp_path):
    root = write_dataset(tmp_path / "d", lengths=(5, 4), tasks=["Hold", "Pick up the red cube."])
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"Pick up the red cube.": "Pick up the red cube and lift it."}))
    result = CliRunner().invoke(_app(), ["relabel", str(root), "--rules", str(rules)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Pick up the red cube and lift it." in result.output and "1 changes; tasks 2 -> 2" in result.output
    assert "unresolved episode 0: 'Hold'" in result.output
    from smolvla.cli.main import app

    help_text = " ".join(CliRunner().invoke(app, ["relabel", "--help"]).output.split())
    assert "applied to every task it names, vague or not" in help_text
