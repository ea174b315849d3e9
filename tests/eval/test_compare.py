"""smolvla.eval.compare: reports side by side as the paper's table (golden Markdown), JSON and a plot."""

from __future__ import annotations

import json

import pytest

from smolvla.eval.compare import load_row, main, markdown, parse_pair


def _report(path, per_task: dict[str, tuple[float, float]], episodes: int):
    path.write_text(
        json.dumps(
            {
                "meta": {},
                "overall": {"episodes": episodes, "success_rate": 0.0, "mean_score": 0.0},
                "per_task": {
                    f"so101/{t}": {"episodes": episodes // len(per_task), "success_rate": s, "mean_score": m}
                    for t, (s, m) in per_task.items()
                },
                "episodes": [],
            }
        )
    )
    return path


def test_table_averages_tasks_not_episodes_and_marks_missing_tasks(tmp_path):
    a = load_row("ft id", _report(tmp_path / "a.json", {"pick-place": (0.9, 0.95), "stacking": (0.3, 0.5)}, 40))
    b = load_row("scratch id", _report(tmp_path / "b.json", {"pick-place": (0.1, 0.25)}, 20))
    assert a.average == pytest.approx((0.6, 0.725))
    assert markdown([a, b]).splitlines()[:4] == [
        "| policy | pick-place | stacking | average | episodes |",
        "|---|---|---|---|---|",
        "| ft id | 90% / 0.95 | 30% / 0.50 | **60% / 0.72** | 40 |",
        "| scratch id | 10% / 0.25 | - | **10% / 0.25** | 20 |",
    ]


def test_cli_writes_markdown_json_and_plot(tmp_path, capsys):
    r = _report(tmp_path / "r.json", {"pick-place": (0.5, 0.75), "sorting": (0.0, 0.25)}, 20)
    assert main([f"finetuned id={r}", "--out", str(tmp_path / "out" / "table")]) == 0
    data = json.loads((tmp_path / "out" / "table.json").read_text())
    assert data["rows"][0]["average"] == {"success_rate": 0.25, "mean_score": 0.5}
    assert data["rows"][0]["label"] == "finetuned id"
    assert (tmp_path / "out" / "table.png").stat().st_size > 1000
    assert "| finetuned id | 50% / 0.75 | 0% / 0.25 |" in (tmp_path / "out" / "table.md").read_text()


def test_bad_arguments_name_what_was_expected(tmp_path):
    with pytest.raises(ValueError, match="expected LABEL=REPORT_JSON, got 'nolabel'"):
        parse_pair("nolabel")
    (tmp_path / "x.json").write_text(json.dumps({"overall": {}}))
    with pytest.raises(ValueError, match="not an eval report with per-task success_rate and mean_score"):
        load_row("x", tmp_path / "x.json")
    with pytest.raises(ValueError, match="cannot read an eval report"):
        load_row("y", tmp_path / "missing.json")
