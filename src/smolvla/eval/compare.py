"""Several evaluation reports side by side: the paper's table (success and mean score per task, the
average) for each policy and split, as Markdown, JSON and a grouped bar plot.

    python -m smolvla.eval.compare "finetuned id=outputs/eval_ft_id/report.json" \
        "scratch id=outputs/eval_scratch_id/report.json" --out docs/measurements/so101_suite/ablation

Each argument is LABEL=REPORT (a `report.json` written by `smolvla eval`). Rows keep the order given.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

# The paper's SmolVLA (0.45B) row on its real SO-100 tasks (success, %), printed under our table as the target.
PAPER_SO100 = {"pick-place": 75.0, "stacking": 90.0, "sorting": 70.0, "average": 78.3}


@dataclass(frozen=True)
class Row:
    """One policy on one split: task -> (success rate, mean score) in [0, 1], plus the episode count."""

    label: str
    tasks: dict[str, tuple[float, float]]
    episodes: int
    source: str

    @property
    def average(self) -> tuple[float, float]:
        """Unweighted mean over the tasks (the paper averages tasks, not episodes)."""
        n = len(self.tasks)
        return (sum(s for s, _ in self.tasks.values()) / n, sum(m for _, m in self.tasks.values()) / n)


def load_row(label: str, path: Path) -> Row:
    """The row of `path` (a report.json of `smolvla eval`); a report without scores is an error."""
    try:
        report = json.loads(path.read_text())
        per_task = report["per_task"]
        tasks = {
            name.split("/", 1)[-1]: (float(s["success_rate"]), float(s["mean_score"])) for name, s in per_task.items()
        }
        episodes = int(report["overall"]["episodes"])
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read an eval report ({e})") from e
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: not an eval report with per-task success_rate and mean_score (missing {e})") from e
    if not tasks:
        raise ValueError(f"{path}: the report has no tasks")
    return Row(label, tasks, episodes, str(path))


def markdown(rows: list[Row]) -> str:
    """A Markdown table: one row per policy/split, per task "success% / score", then the average."""
    tasks = list(dict.fromkeys(t for r in rows for t in r.tasks))
    head = "| policy | " + " | ".join(tasks) + " | average | episodes |"
    sep = "|---" * (len(tasks) + 3) + "|"
    lines = [head, sep]
    for r in rows:
        cells = [_cell(*r.tasks[t]) if t in r.tasks else "-" for t in tasks]
        lines.append(f"| {r.label} | " + " | ".join(cells) + f" | **{_cell(*r.average)}** | {r.episodes} |")
    return "\n".join(lines) + "\n\ncells: success rate / mean score (partial credit, 0-1)\n"


def _cell(success: float, score: float) -> str:
    return f"{100 * success:.0f}% / {score:.2f}"


def figure(rows: list[Row]):
    """Grouped bars of the mean score per task (and the average) for every row; success as a hatched overlay."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(t for r in rows for t in r.tasks)) + ["average"]
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(1.6 * len(tasks) + 2, 3.6))
    for i, r in enumerate(rows):
        values = {**r.tasks, "average": r.average}
        xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(tasks))]
        scores = [values.get(t, (0.0, 0.0))[1] for t in tasks]
        success = [values.get(t, (0.0, 0.0))[0] for t in tasks]
        # Colour given per row: the overlay bars would otherwise take the next colour of the cycle, and rows
        # past the fifth would repeat the first ones' colours. The hatch is drawn in white: in the bar's own
        # colour it would not show on the bar.
        ax.bar(xs, scores, width, label=r.label, color=plt.get_cmap("tab10")(i % 10))
        ax.bar(xs, success, width, fill=False, hatch="//", edgecolor="white", lw=0)
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean score (hatched: success rate)")
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def write(rows: list[Row], out: Path) -> list[Path]:
    """OUT.md, OUT.json and OUT.png; returns the three paths."""
    out.parent.mkdir(parents=True, exist_ok=True)
    md, js, png = out.with_suffix(".md"), out.with_suffix(".json"), out.with_suffix(".png")
    md.write_text(markdown(rows))
    rows_json = [
        {
            "label": r.label,
            "source": r.source,
            "episodes": r.episodes,
            "tasks": {t: {"success_rate": s, "mean_score": m} for t, (s, m) in r.tasks.items()},
            "average": {"success_rate": r.average[0], "mean_score": r.average[1]},
        }
        for r in rows
    ]
    js.write_text(json.dumps({"rows": rows_json, "paper_smolvla_so100_success_pct": PAPER_SO100}, indent=2))
    import matplotlib.pyplot as plt

    fig = figure(rows)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return [md, js, png]


def parse_pair(arg: str) -> tuple[str, Path]:
    label, sep, path = arg.rpartition("=")
    if not sep or not label or not path:
        raise ValueError(f"expected LABEL=REPORT_JSON, got {arg!r}")
    return label, Path(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("reports", nargs="+", help="LABEL=path/to/report.json")
    p.add_argument("--out", type=Path, required=True, help="output stem: writes OUT.md, OUT.json, OUT.png")
    args = p.parse_args(argv)
    try:
        rows = [load_row(*parse_pair(a)) for a in args.reports]
    except ValueError as e:
        p.error(str(e))
    for path in write(rows, args.out):
        print(path)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
