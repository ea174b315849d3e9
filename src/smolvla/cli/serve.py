"""`smolvla serve` (policy server) and `smolvla client` (robot client, simulated robot for now)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import typer

from smolvla.cli.choices import choice_option, device_option
from smolvla.serve.action_queue import AGGREGATORS

# Robot-client choices (shared with `smolvla eval --remote/--async`), checked while the command line is parsed.
CLIENT_MODES = ("async", "sync")
AGGREGATE_CHOICES = tuple(AGGREGATORS)
ENGINES = ("torch", "onnx")


def register(app: typer.Typer) -> None:
    """Add this area's subcommands to `app`."""
    app.command("serve")(serve)
    app.command("client")(client)


def serve(
    checkpoint: Path = typer.Option(
        ..., exists=True, file_okay=False, help="Policy directory (save_pretrained; `smolvla export` for onnx)."
    ),
    engine: str = choice_option("torch", ENGINES, help="torch: a checkpoint; onnx: an export, served without torch."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind; 0.0.0.0 exposes the server to the network."),
    port: int = typer.Option(8765, help="TCP port (0 picks a free one)."),
    token: str | None = typer.Option(None, envvar="SMOLVLA_TOKEN", help="Shared secret clients must send."),
    tls_cert: Path | None = typer.Option(None, exists=True, dir_okay=False, help="PEM certificate: serve wss://."),
    tls_key: Path | None = typer.Option(None, exists=True, dir_okay=False, help="PEM private key for --tls-cert."),
    device: str = device_option("cpu", help="Torch device of the policy."),
    precision: str = choice_option(
        "auto", ("auto", "fp32", "bf16"), help="torch engine dtype; auto: bf16 only where the device has it natively."
    ),
    threads: int | None = typer.Option(None, help="Intra-op threads of torch or ONNX Runtime (default: theirs)."),
    batch_window_ms: float = typer.Option(5.0, help="Wait this long to batch observations of several clients."),
    max_batch: int = typer.Option(8, help="Most observations in one forward pass."),
    epsilon: float = typer.Option(0.05, help="Skip observations whose state is this close (L2) to the last one."),
    actions_per_chunk: int | None = typer.Option(None, help="Send only the first k actions of each chunk."),
    max_message_mb: float = typer.Option(16.0, help="Largest accepted frame, MiB."),
    rtc_schedule: str = choice_option(
        "exp", ("exp", "linear", "ones", "zeros"), help="Real-time chunking: how prefix weights fall to 0."
    ),
    rtc_max_weight: float = typer.Option(5.0, help="Real-time chunking: maximum guidance weight (0: off)."),
    log_level: str = typer.Option("INFO", help="Python logging level."),
) -> None:
    """Serve the policy in CHECKPOINT to robot clients (websockets + msgpack, see docs/protocol.md).

    Clients whose aggregation is "rtc" get real-time chunking with --rtc-* settings (the onnx engine: an export
    with guide.onnx, which `smolvla export` writes unless --no-rtc)."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from smolvla.deploy.rtc import RTCConfig
    from smolvla.serve.server import PolicyServer, ServerConfig

    try:
        rtc = RTCConfig(schedule=rtc_schedule, max_guidance_weight=rtc_max_weight)  # type: ignore[arg-type]
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--rtc-max-weight") from err
    if engine == "onnx":
        runner = onnx_runner(checkpoint, threads=threads, device=device, actions_per_chunk=actions_per_chunk, rtc=rtc)
    else:
        runner = torch_runner(
            checkpoint,
            threads=threads,
            device=device,
            precision=precision,
            actions_per_chunk=actions_per_chunk,
            rtc=rtc,
        )
    config = ServerConfig(
        host=host,
        port=port,
        token=token,
        tls_cert=str(tls_cert) if tls_cert else None,
        tls_key=str(tls_key) if tls_key else None,
        max_message_bytes=int(max_message_mb * 1024 * 1024),
        batch_window_s=batch_window_ms / 1000.0,
        max_batch=max_batch,
        similarity_epsilon=epsilon,
    )
    try:
        asyncio.run(PolicyServer(runner, config).serve_forever())
    except KeyboardInterrupt:
        typer.echo("server stopped")


def torch_runner(
    checkpoint: Path,
    *,
    threads: int | None,
    device: str,
    precision: str,
    actions_per_chunk: int | None,
    rtc=None,
):
    """The torch policy in `checkpoint` (ours or LeRobot's) behind a `PolicyRunner`, in `precision`; `rtc`: the
    real-time chunking settings (`smolvla.deploy.rtc.RTCConfig`, default when None)."""
    import torch

    from smolvla.policy.policy import SmolVLAPolicy
    from smolvla.policy.precision import resolve_dtype
    from smolvla.serve.runner import PolicyRunner

    if threads is not None:
        torch.set_num_threads(threads)
    dtype = resolve_dtype(precision, device)
    logging.getLogger(__name__).info("torch engine: %s on %s", dtype, device)
    policy = SmolVLAPolicy.from_pretrained(checkpoint, device=device, dtype=dtype).eval()
    name = f"SmolVLAPolicy({checkpoint.name})"
    return PolicyRunner(policy, actions_per_chunk=actions_per_chunk, description=name, rtc=rtc)


def onnx_runner(checkpoint: Path, *, threads: int | None, device: str, actions_per_chunk: int | None, rtc=None):
    """The exported policy in `checkpoint` on ONNX Runtime (CPU), imported without torch; `rtc`: as
    `torch_runner`'s (used when the export has guide.onnx)."""
    from smolvla.deploy.onnx_policy import OnnxPolicy
    from smolvla.serve.array_runner import ArrayRunner

    if device != "cpu":
        raise typer.BadParameter(f"the onnx engine runs on the CPU, got --device {device}", param_hint="--device")
    policy = OnnxPolicy(checkpoint, threads=threads)
    name = f"OnnxPolicy({checkpoint.name})"
    return ArrayRunner(policy, actions_per_chunk=actions_per_chunk, description=name, rtc=rtc)


def client(
    uri: str = typer.Option("ws://127.0.0.1:8765", help="Server address, ws:// or wss://."),
    task: str = typer.Option("reach goal", help="Task instruction sent in the handshake."),
    mode: str = choice_option(
        "async", CLIENT_MODES, help="async (overlap inference and execution) or sync (baseline)."
    ),
    fps: float = typer.Option(30.0, help="Control ticks per second."),
    g: float = typer.Option(0.7, help="Send an observation when the queue holds <= g * chunk_size actions."),
    aggregate: str = choice_option("weighted", AGGREGATE_CHOICES, help="How overlapping chunks merge."),
    episodes: int = typer.Option(1, help="Episodes to run (simulated reaching robot)."),
    max_seconds: float = typer.Option(20.0, help="Time limit per episode."),
    n_joints: int = typer.Option(6, help="Simulated robot joints (state = 2 * joints, action = joints)."),
    image_size: int = typer.Option(64, help="Simulated camera resolution (square)."),
    seed: int = typer.Option(0, help="Seed of the first episode."),
    token: str | None = typer.Option(None, envvar="SMOLVLA_TOKEN", help="Shared secret."),
    ca_file: Path | None = typer.Option(None, exists=True, dir_okay=False, help="Certificate to trust for wss://."),
) -> None:
    """Drive the simulated reaching robot from a policy server; prints one JSON line per episode.

    The served policy must match the robot: one camera "observation.images.front", state_dim = 2 *
    n_joints, action_dim = n_joints. Real robots and sim environments plug in through `Robot` adapters.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from smolvla.serve.client import ClientConfig, RobotClient
    from smolvla.serve.robot import ReachingRobot

    robot = ReachingRobot(n_joints=n_joints, image_hw=(image_size, image_size), task=task, seed=seed)
    config = ClientConfig(
        uri=uri,
        task=task,
        fps=fps,
        g=g,
        aggregate=aggregate,
        mode=mode,  # type: ignore[arg-type]  # validated by ClientConfig
        token=token,
        ca_file=str(ca_file) if ca_file else None,
    )

    async def run() -> None:
        async with RobotClient(robot, config) as rc:
            await rc.wait_connected(timeout=30.0)
            for episode in range(episodes):
                robot.reset(seed + episode)
                stats = await rc.run_episode(max_ticks=int(max_seconds * fps), until=lambda: robot.success)
                lat = sorted(stats.latencies_s)
                summary = {
                    "episode": episode,
                    "success": robot.success,
                    "seconds": round(stats.duration_s, 3),
                    "executed": stats.executed,
                    "hold_ticks": stats.hold_ticks,
                    "chunks": stats.chunks,
                    "skipped": stats.skipped,
                    "errors": stats.errors,
                    "over_latency_budget": stats.over_budget,
                    "median_latency_s": round(lat[len(lat) // 2], 4) if lat else None,
                    "reconnects": rc.reconnects,
                }
                typer.echo(json.dumps(summary))

    asyncio.run(run())
