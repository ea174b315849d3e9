"""`smolvla` subcommands for the policy area."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's subcommands to `app`."""
