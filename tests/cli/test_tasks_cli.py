"""`smolvla tasks`: the task names and sets of every benchmark, and where `eval --help` points to them."""

from __future__ import annotations

from typer.testing import CliRunner

from smolvla.cli.main import app

runner = CliRunner()


def test_tasks_lists_every_benchmark():
    result = runner.invoke(app, ["tasks"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "metaworld (default --tasks mt10)" in text and "drawer-close-v3" in text and "mt50 (50)" in text
    assert "so101 (default --tasks all)" in text and "tasks: pick-place, stacking, sorting" in text
    assert "libero (default --tasks libero_spatial)" in text and "libero_goal (10)" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_tasks_of_one_benchmark():
    result = runner.invoke(app, ["tasks", "so101"])
    assert result.exit_code == 0 and result.stdout.splitlines()[0] == "so101 (default --tasks all)"
    assert "metaworld" not in result.stdout


def test_eval_help_names_the_defaults_and_the_listing():
    text = " ".join(runner.invoke(app, ["eval", "--help"], terminal_width=100).stdout.split())
    assert "mt10 for metaworld, all for so101, libero_spatial for libero" in text
    assert "`smolvla tasks` lists them" in text
