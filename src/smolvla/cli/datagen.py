"""`smolvla datagen`: scripted demonstration generation into LeRobot v3.0 datasets."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from smolvla.cli.choices import choice_option
from smolvla.envs.so101_suite.layout import SPLITS

# Benchmarks with scripted experts, and the task set `datagen` uses for each when --tasks is not given.
EXPERT_BENCHMARKS = {"metaworld": "mt10", "so101": "all", "libero": "libero_spatial"}
# Benchmarks whose scenes come in named splits (in- and out-of-distribution placements, colours, lighting).
SPLIT_BENCHMARKS = ("so101",)


def register(app: typer.Typer) -> None:
    """Add this area's subcommands to `app`."""
    app.command(name="datagen")(datagen)


def datagen(
    benchmark: str = typer.Argument(..., help="metaworld | so101 | libero"),
    out: Path = typer.Option(..., "--out", help="new LeRobot v3.0 dataset folder (must not hold a dataset)"),
    tasks: str | None = typer.Option(
        None,
        "--tasks",
        "--suites",
        help="comma-separated task sets (Meta-World mt10, mt50, easy, ...; LIBERO suites libero_spatial, "
        "libero_object, libero_goal, libero_10) and/or task names [default: mt10 for metaworld, all "
        "(pick-place, stacking, sorting) for so101, libero_spatial for libero]; `smolvla tasks` lists them",
    ),
    episodes: int = typer.Option(50, "--episodes", min=1, help="successful episodes to keep per task"),
    image_size: int = typer.Option(64, "--image-size", min=8, help="square camera image size in pixels"),
    workers: int = typer.Option(2, "--workers", min=1, help="parallel rollout processes"),
    seed: int = typer.Option(0, "--seed", min=0, help="first env seed of every task"),
    max_attempts: int | None = typer.Option(
        None, "--max-attempts", min=1, help="rollouts per task before giving up (default 4 x --episodes)"
    ),
    max_steps: int | None = typer.Option(None, "--max-steps", min=1, help="step limit per episode"),
    split: str | None = choice_option(
        None, SPLITS, "--split", help="so101 only: scene distribution, id (training region) or ood [default: id]"
    ),
    expert_noise: float = typer.Option(
        0.0,
        "--expert-noise",
        min=0.0,
        help="so101 only: metres off target of the expert's first approach to each cube and destination, "
        "then corrected (demonstrations of recovering from a misjudged position) [default: 0]",
    ),
) -> None:
    """Roll out scripted experts and write the successful episodes as a LeRobot v3.0 dataset."""
    from tqdm import tqdm

    from smolvla.envs.datagen import DatagenConfig, generate, iter_kept_episodes, scratch_dir, write_dataset
    from smolvla.envs.registry import resolve_tasks

    if benchmark not in EXPERT_BENCHMARKS:
        raise typer.BadParameter(
            f"no scripted expert for {benchmark!r}; expected one of {list(EXPERT_BENCHMARKS)}", param_hint="benchmark"
        )
    if split is not None and benchmark not in SPLIT_BENCHMARKS:
        raise typer.BadParameter(
            f"{benchmark} has no scene splits; --split is for {list(SPLIT_BENCHMARKS)}", param_hint="--split"
        )
    if expert_noise and benchmark != "so101":
        raise typer.BadParameter(
            f"{benchmark}'s experts take no approach noise; --expert-noise is for so101", param_hint="--expert-noise"
        )
    if benchmark in SPLIT_BENCHMARKS:
        split = split or "id"
    if benchmark == "libero":
        # Scenes drawn from the tasks' BDDL regions: the 50 official initial states stay for evaluation.
        split = "sampled"
    names = resolve_tasks(benchmark, tasks or EXPERT_BENCHMARKS[benchmark])
    cfg = DatagenConfig(
        env_names=tuple(names),
        episodes_per_task=episodes,
        image_size=image_size,
        seed=seed,
        workers=workers,
        max_attempts_per_task=max_attempts,
        max_steps=max_steps,
        split=split,
        expert_noise=expert_noise,
    )
    if (out / "meta" / "info.json").exists():
        raise typer.BadParameter(f"{out} already holds a dataset; choose a new --out", param_hint="--out")
    start = time.monotonic()
    # tqdm rather than a rich live display: it also reports into a log file when stderr is not a terminal.
    with scratch_dir() as scratch:
        with tqdm(total=episodes * len(names), desc=f"expert episodes ({len(names)} tasks)", unit="ep") as bar:
            reports = generate(cfg, Path(scratch), progress=bar.update)
        kept = sum(len(r.kept) for r in reports.values())
        with tqdm(total=kept, desc="writing dataset", unit="ep") as bar:
            written = write_dataset(iter_kept_episodes(reports), out, robot_type=benchmark, progress=bar.update)
    summary = {
        "out": str(out),
        "split": split,
        "expert_noise_m": expert_noise,
        "episodes_written": written,
        "seconds": round(time.monotonic() - start, 1),
        "expert_success_rate": {
            name: {"attempts": r.attempts, "successes": r.successes, "rate": round(r.success_rate, 4)}
            for name, r in reports.items()
        },
        "short_tasks": [name for name, r in reports.items() if len(r.kept) < episodes],
    }
    (out / "datagen_report.json").write_text(json.dumps(summary, indent=2))
    typer.echo(json.dumps(summary, indent=2))
    if summary["short_tasks"]:
        raise typer.Exit(code=1)
