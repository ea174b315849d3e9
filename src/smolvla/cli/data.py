"""`smolvla` subcommands for the data area: `stats` and `relabel`."""

from __future__ import annotations

from pathlib import Path

import typer


def stats(
    root: Path = typer.Argument(..., help="dataset directory (v3.0 to write; v2.x is only printed)"),
    cameras: bool = typer.Option(True, help="also recompute camera stats from decoded video or PNG frames"),
    write: bool = typer.Option(True, help="store the result in meta/stats.json and the episodes parquet"),
) -> None:
    """(Re)compute normalisation statistics (mean, std, min, max, count, q01..q99) as LeRobot does."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from smolvla.data.restats import compute_dataset_stats, write_dataset_stats

    result = write_dataset_stats(root, cameras) if write else compute_dataset_stats(root, cameras)[1]
    table = Table(title=f"stats of {root}" + (" (written)" if write else ""))
    for col in ("feature", "count", "mean", "std", "min", "max"):
        table.add_column(col)
    for key, st in result.items():
        cells = [
            " ".join(f"{x:.4g}" for x in np.asarray(st[s]).ravel()[:8]) for s in ("count", "mean", "std", "min", "max")
        ]
        table.add_row(key, *cells)
    Console().print(table)


def relabel(
    root: Path = typer.Argument(..., help="v3.0 dataset directory"),
    rules: Path | None = typer.Option(
        None, help="JSON object mapping task strings to new ones; applied to every task it names, vague or not"
    ),
    vlm: Path | None = typer.Option(None, help="local transformers VLM directory used to describe episodes"),
    all_tasks: bool = typer.Option(
        False, "--all", help="with --vlm: describe every task, not only vague ones (rules always apply to all)"
    ),
    dry_run: bool = typer.Option(False, help="report what would change without writing"),
) -> None:
    """Replace vague task strings; the originals stay in meta/tasks_original.parquet + meta/relabel_log.json."""
    from rich.console import Console
    from rich.table import Table

    from smolvla.data.relabel import RuleAnnotator, VLMAnnotator, relabel_dataset

    if (rules is None) == (vlm is None):
        raise typer.BadParameter("give exactly one of --rules FILE or --vlm MODEL_DIR")
    annotator = RuleAnnotator.from_json(rules) if rules is not None else VLMAnnotator.from_model_dir(vlm)
    # Rules rewrite exactly the tasks they name; a VLM is asked about vague tasks unless --all.
    only_vague = False if rules is not None else not all_tasks
    report = relabel_dataset(root, annotator, only_vague=only_vague, dry_run=dry_run)
    table = Table(title=f"relabel {root}" + (" (dry run)" if dry_run else ""))
    for col in ("episode", "old task", "new task"):
        table.add_column(col)
    for c in report.changes:
        table.add_row(str(c["episode_index"]), repr(c["old_task"]), c["new_task"])
    console = Console()
    console.print(table)
    for u in report.unresolved:
        console.print(f"[yellow]unresolved[/yellow] episode {u['episode_index']}: {u['task']!r}")
    console.print(f"{len(report.changes)} changes; tasks {report.tasks_before} -> {report.tasks_after}")


def register(app: typer.Typer) -> None:
    """Add this area's subcommands to `app`."""
    app.command("stats")(stats)
    app.command("relabel")(relabel)
