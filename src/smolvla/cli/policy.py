"""`smolvla` subcommands for the policy area."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def inspect_checkpoint(
    path: Path = typer.Argument(..., help="Checkpoint directory (ours or a LeRobot SmolVLA one)."),
    as_json: bool = typer.Option(False, "--json", help="Print the full summary as JSON."),
) -> None:
    """Print a checkpoint's config summary, parameter count and normalisation stats keys."""
    from smolvla.policy.inspect import inspect_checkpoint as summarise

    try:
        info = summarise(path)
    except (FileNotFoundError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=1) from e
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    cfg, model = info["config"], info["config"]["model"]
    typer.echo(f"format:      {info['format']}")
    typer.echo(f"parameters:  {info['parameters']:,} in {info['tensors']} tensors")
    typer.echo(f"cameras:     {cfg['camera_keys']} (+{cfg['empty_cameras']} empty)")
    typer.echo(
        f"state/action dims: {cfg['state_dim']}/{cfg['action_dim']}; norm {cfg['state_norm']}/{cfg['action_norm']}"
    )
    typer.echo(f"chunk:       {model['chunk_size']} (execute {cfg['n_action_steps']}), {model['num_steps']} flow steps")
    v, d = model["vision"], model["decoder"]
    typer.echo(
        f"model:       image {v['image_size']}, vision {v['layers']}x{v['hidden']}, "
        f"text {d['layers']}/{d['total_layers']}x{d['hidden']}, {model['max_lang_tokens']} language tokens"
    )
    typer.echo("stats keys:  " + (", ".join(info["stats_keys"]) or "(none)"))


def register(app: typer.Typer) -> None:
    """Add this area's subcommands to `app`."""
    app.command("inspect-checkpoint")(inspect_checkpoint)
