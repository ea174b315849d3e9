"""`smolvla export`: a checkpoint (ours or LeRobot's) -> ONNX graphs for the torch-free runtime."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from smolvla.cli.choices import choice_option

PRECISIONS = ("fp32", "int8-dynamic", "int8-static", "fp16")


def export(
    checkpoint: Path = typer.Argument(..., exists=True, file_okay=False, help="Policy directory (ours or LeRobot's)."),
    out: Path = typer.Option(..., "--out", help="Directory to write (replaced atomically if it exists)."),
    quantize: str = choice_option("fp32", PRECISIONS, help="Precision of the exported graphs."),
    calibration: Path | None = typer.Option(
        None, exists=True, file_okay=False, help="LeRobot dataset whose frames calibrate int8-static."
    ),
    calibration_frames: int = typer.Option(32, help="Frames drawn evenly from --calibration."),
    tokenizer: Path | None = typer.Option(None, exists=True, help="LeRobot checkpoints only: tokenizer.json."),
    rtc: bool = typer.Option(True, help="Write guide.onnx for real-time chunking (float32, a second expert copy)."),
) -> None:
    """Export CHECKPOINT to ONNX (prefix.onnx, denoise.onnx, guide.onnx, export.json, stats, tokenizer); serve
    the result with `smolvla serve --engine onnx --checkpoint DIR`."""
    from smolvla.export.exporter import export_policy
    from smolvla.policy.policy import SmolVLAPolicy

    if quantize == "int8-static" and calibration is None:
        raise typer.BadParameter("int8-static needs --calibration DATASET", param_hint="--calibration")
    policy = SmolVLAPolicy.from_pretrained(checkpoint, tokenizer_path=tokenizer)
    samples = None
    if calibration is not None:
        from smolvla.export.calibration import dataset_samples

        samples = dataset_samples(calibration, policy.config.camera_keys, calibration_frames)
    path = export_policy(
        policy,
        out,
        precision=quantize,  # type: ignore[arg-type]
        calibration=samples,
        source=checkpoint.name,
        rtc=rtc,
    )
    sizes = {f.name: f.stat().st_size for f in sorted(path.iterdir())}
    typer.echo(json.dumps({"out": str(path), "precision": quantize, "bytes": sizes}))


def register(app: typer.Typer) -> None:
    """Add this area's subcommands to `app`."""
    app.command("export")(export)
