"""The `smolvla` command: one entry point, one subcommand per job.

Each area keeps its subcommands in its own module (`cli/data.py`, `cli/train.py`, ...) exposing
`register(app)`; this file only assembles them. CLI modules build configs and call `main(cfg)`s.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="SmolVLA: offline-first VLA policy toolkit.")

# Modules under smolvla.cli that contribute subcommands, each with `register(app: typer.Typer) -> None`.
COMMAND_MODULES = ("policy", "data", "train", "serve", "datagen", "evaluate", "demo")


@app.callback()
def _root() -> None:
    """SmolVLA: offline-first VLA policy toolkit."""


@app.command()
def version() -> None:
    """Print the package version."""
    from smolvla import __version__

    typer.echo(__version__)


for _name in COMMAND_MODULES:
    importlib.import_module(f"smolvla.cli.{_name}").register(app)


if __name__ == "__main__":
    app()
