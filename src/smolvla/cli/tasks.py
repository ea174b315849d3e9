"""`smolvla tasks [BENCHMARK]`: the task names and task sets `eval`, `datagen` and `demo` accept."""

from __future__ import annotations

import textwrap

import typer

from smolvla.cli.choices import choice_parser
from smolvla.envs.libero_tasks import LIBERO_SUITES, LIBERO_TASKS_PER_SUITE
from smolvla.envs.registry import BENCHMARKS, DEFAULT_TASKS, list_envs, task_sets


def register(app: typer.Typer) -> None:
    """Add this area's subcommands to `app`."""
    app.command(name="tasks")(tasks)


def _wrapped(label: str, items: list[str]) -> str:
    text = ", ".join(items)
    return textwrap.fill(
        text, width=80, initial_indent=f"  {label}: ", subsequent_indent="    ", break_on_hyphens=False
    )


def describe_benchmark(benchmark: str) -> str:
    """A few lines: the default task spec, the named sets (with their sizes) and every task name."""
    prefix = benchmark + "/"
    lines = [f"{benchmark} (default --tasks {DEFAULT_TASKS[benchmark]})"]
    sets = task_sets(benchmark)
    if sets:
        lines.append(_wrapped("sets", [f"{name} ({len(members)})" for name, members in sets.items()]))
    if benchmark == "libero":  # tasks are numbered within each suite
        lines.append(f"  tasks: SUITE/INDEX with INDEX in 0..{LIBERO_TASKS_PER_SUITE - 1}, e.g. {LIBERO_SUITES[0]}/0")
    else:
        lines.append(_wrapped("tasks", [name.removeprefix(prefix) for name in list_envs(benchmark)]))
    return "\n".join(lines)


def tasks(
    benchmark: str | None = typer.Argument(
        None, parser=choice_parser(BENCHMARKS), metavar="BENCHMARK", help=f"only this one: {', '.join(BENCHMARKS)}"
    ),
) -> None:
    """List the simulated tasks and task sets (for --tasks of eval, datagen and demo)."""
    for name in [benchmark] if benchmark else BENCHMARKS:
        typer.echo(describe_benchmark(name))
