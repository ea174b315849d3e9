"""Metrics JSONL records, their validation, and the loss-curve PNG."""

from __future__ import annotations

import pytest

from smolvla.train.metrics import MetricsWriter, plot_loss_curve, read_metrics


def test_jsonl_appends_and_plots(tmp_path) -> None:
    w = MetricsWriter(tmp_path)
    w.log({"step": 1, "loss": 2.0, "grad_norm": 1.0, "lr": 1e-4, "samples_per_s": 10.0})
    w.log({"step": 2, "eval/success_rate": 0.5})
    w.close()
    w = MetricsWriter(tmp_path)  # a resumed run appends
    w.log({"step": 3, "loss": 1.0, "grad_norm": 1.0, "lr": 1e-4, "samples_per_s": 10.0})
    w.close()
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3]
    png = plot_loss_curve(tmp_path / "metrics.jsonl", tmp_path / "loss.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_record_needs_integer_step(tmp_path) -> None:
    w = MetricsWriter(tmp_path)
    with pytest.raises(ValueError, match=r"needs an integer 'step', got 1.5"):
        w.log({"step": 1.5, "loss": 1.0})
    w.close()


def test_plot_without_loss_is_an_error(tmp_path) -> None:
    (tmp_path / "m.jsonl").write_text('{"step": 1, "eval/x": 1.0}\n')
    with pytest.raises(ValueError, match="no finite 'loss' records"):
        plot_loss_curve(tmp_path / "m.jsonl", tmp_path / "x.png")


def test_several_runs_share_one_plot_and_a_run_without_loss_is_named(tmp_path) -> None:
    for name, losses in {"a": [2.0, 1.0], "b": [1.5, 0.5]}.items():
        (tmp_path / name).mkdir()
        w = MetricsWriter(tmp_path / name)
        for step, loss in enumerate(losses, 1):
            w.log({"step": step, "loss": loss})
        w.close()
    runs = {"finetuned": tmp_path / "a" / "metrics.jsonl", "scratch": tmp_path / "b" / "metrics.jsonl"}
    png = plot_loss_curve(runs, tmp_path / "both.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "empty.jsonl").write_text('{"step": 1}\n')
    with pytest.raises(ValueError, match=r"no finite 'loss' records in .*empty.jsonl"):
        plot_loss_curve({**runs, "empty": tmp_path / "empty.jsonl"}, tmp_path / "x.png")
