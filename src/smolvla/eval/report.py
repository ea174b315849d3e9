"""Evaluation reports: a JSON file people can diff and a bar plot people can glance at."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from smolvla.eval.scoring import EpisodeResult, by_group, by_task, summarize

# Reference numbers from the SmolVLA paper (Meta-World MT50 success rate, %), for the plot and the report.
PAPER_METAWORLD = {
    "SmolVLA (0.45B)": {"easy": 82.5, "medium": 41.8, "hard": 45.0, "very_hard": 60.0, "average": 57.3},
    "pi0 (3.3B)": {"average": 50.5},
    "Diffusion Policy": {"average": 10.5},
}


def build_report(
    results: Sequence[EpisodeResult],
    group_of: Callable[[str], str] | None = None,
    meta: dict | None = None,
) -> dict:
    """Overall, per-task and (when `group_of` is given) per-group figures plus every episode."""
    report = {
        "meta": dict(meta or {}),
        "overall": asdict(summarize(results)),
        "per_task": {name: asdict(s) for name, s in by_task(results).items()},
        "episodes": [r.to_dict() for r in results],
    }
    if group_of is not None:
        report["per_group_success_rate"] = by_group(results, group_of)
    errors = engine_errors(results)
    if errors["total"]:
        report["engine_errors"] = errors
    return report


def engine_errors(results: Sequence[EpisodeResult]) -> dict:
    """Errors the async engine met (server error replies, refused chunks), summed over the episodes, so a
    score that the errors explain does not look like the policy's: {"total", "episodes", "by_code", "last"}."""
    by_code: dict[str, int] = {}
    total, episodes, last = 0, 0, ""
    for r in results:
        count = int(r.timing.get("errors", 0))
        total += count
        episodes += count > 0
        for code, n in r.timing.get("error_codes", {}).items():
            by_code[code] = by_code.get(code, 0) + n
        last = r.timing.get("last_error") or last
    return {"total": total, "episodes": episodes, "by_code": by_code, "last": last}


def write_report(report: dict, out_dir: Path) -> tuple[Path, Path]:
    """Write `report.json` and `success.png` into `out_dir`; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "report.json"
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2))
    tmp.replace(json_path)
    return json_path, plot_success(report, out_dir / "success.png")


def plot_success(report: dict, path: Path) -> Path:
    """Save `success_figure(report)` as a PNG at `path`."""
    import matplotlib.pyplot as plt

    fig = success_figure(report)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def success_figure(report: dict):
    """Horizontal bars: success rate per task (and per group when present), the overall rate as a dashed
    line. The legend sits above the axes: inside them it would hide the end of some bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = report["per_task"]
    groups = report.get("per_group_success_rate", {})
    names = [n.split("/", 1)[-1] for n in tasks] + [f"[{g}]" for g in groups]
    values = [100 * s["success_rate"] for s in tasks.values()] + [100 * v for v in groups.values()]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(names) + 1.8))
    colors = ["tab:blue"] * len(tasks) + ["tab:orange"] * len(groups)
    ax.barh(range(len(names)), values, color=colors)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    overall = 100 * report["overall"]["success_rate"]
    ax.axvline(overall, color="k", ls="--", lw=1, label=f"overall {overall:.1f}%")
    ax.set_xlabel("success rate (%)")
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False, borderaxespad=0.2)
    fig.tight_layout()
    return fig
