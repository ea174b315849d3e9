"""The `smolvla` command: one entry point, one subcommand per job.

Each area keeps its subcommands in its own module (`cli/data.py`, `cli/train.py`, ...) exposing
`register(app)`; this file only assembles them. CLI modules build configs and call `main(cfg)`s.
A failing command prints one line `error: ...` on stderr (`cli/errors.py`); `--debug` adds the traceback.
"""

from __future__ import annotations

import importlib

import typer

from smolvla.cli.errors import DEBUG_FLAG, ErrorReportingGroup, set_debug

app = typer.Typer(
    cls=ErrorReportingGroup,
    no_args_is_help=True,
    add_completion=False,
    help="SmolVLA: offline-first VLA policy toolkit.",
    # ErrorReportingGroup prints errors as one line; no rich traceback panels, no boxed usage errors.
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Modules under smolvla.cli that contribute subcommands, each with `register(app: typer.Typer) -> None`.
COMMAND_MODULES = ("policy", "data", "train", "serve", "export", "datagen", "tasks", "evaluate", "demo", "robot")


@app.callback()
def _root(
    debug: bool = typer.Option(
        False, DEBUG_FLAG, envvar="SMOLVLA_DEBUG", help="on an error, also print the traceback (or SMOLVLA_DEBUG=1)"
    ),
) -> None:
    """SmolVLA: offline-first VLA policy toolkit."""
    set_debug(debug)


@app.command()
def version() -> None:
    """Print the package version."""
    from smolvla import __version__

    typer.echo(__version__)


for _name in COMMAND_MODULES:
    importlib.import_module(f"smolvla.cli.{_name}").register(app)


if __name__ == "__main__":
    app()
