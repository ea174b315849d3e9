"""The success plot: its legend must not hide any bar, and stays inside the saved image."""

from __future__ import annotations

import pytest

from smolvla.eval.report import plot_success, success_figure


@pytest.mark.parametrize(
    "rates",
    [(0.9, 1.0), (1.0,), (0.0, 0.2, 1.0, 1.0, 0.95)],
    ids=["two-tasks", "one-full-bar", "five-tasks"],
)
def test_legend_covers_no_bar(rates, tmp_path):
    report = {
        "per_task": {f"metaworld/task-{i}": {"success_rate": r} for i, r in enumerate(rates)},
        "per_group_success_rate": {"easy": sum(rates) / len(rates)},
        "overall": {"success_rate": sum(rates) / len(rates)},
    }
    fig = success_figure(report)
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes
    legend = ax.get_legend().get_window_extent(renderer)
    bars = [bar.get_window_extent(renderer) for bar in ax.patches]
    assert len(bars) == len(rates) + 1
    assert not any(legend.overlaps(bar) for bar in bars)
    figure = fig.bbox
    assert figure.x0 <= legend.x0 and legend.x1 <= figure.x1 and figure.y0 <= legend.y0 and legend.y1 <= figure.y1
    assert plot_success(report, tmp_path / "s.png").stat().st_size > 1000
