"""`smolvla eval`: evaluate a policy in simulation, in-process or through the async engine.

    smolvla eval --checkpoint DIR --benchmark metaworld --tasks mt10 --episodes 10 --workers 2
    smolvla eval --checkpoint DIR --tasks drawer-close-v3 --async        # in-process server + robot client
    smolvla eval --remote 127.0.0.1:8765 --tasks drawer-close-v3         # a running `smolvla serve`

Writes report.json, success.png and rollout videos under --out and prints a summary table. The envs render
at the size of the checkpoint's training frames unless --image-size says otherwise (`eval.camera_size`).
Episodes use held-out seeds (from 1000; `smolvla datagen` starts at 0). If an episode fails after others
finished, the report of those is still written, marked "partial" with the error.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import typer

from smolvla.cli.choices import choice_option
from smolvla.cli.serve import AGGREGATE_CHOICES, CLIENT_MODES
from smolvla.envs.registry import BENCHMARKS, DEFAULT_TASKS, HELD_OUT_SEED
from smolvla.envs.so101_suite.layout import SPLITS


def register(app: typer.Typer) -> None:
    """Add this area's subcommands to `app`."""
    app.command(name="eval")(eval_command)


def load_eval_policy(checkpoint: str | Path, n_action_steps: int | None = None) -> Any:
    """The policy in `checkpoint` on CPU, executing `n_action_steps` per chunk if given (else as saved).
    `eval_command` has checked the value against the checkpoint's config before any policy is loaded."""
    from smolvla.policy.checkpoint import load_policy

    policy = load_policy(checkpoint)
    if n_action_steps is not None:
        policy.set_n_action_steps(n_action_steps)
    return policy


def load_policy_agent(checkpoint: str, n_action_steps: int | None = None) -> Any:
    """Agent factory for worker processes (module-level so it pickles): the policy in `checkpoint`, on CPU."""
    from smolvla.eval.agents import PolicyAgent

    return PolicyAgent(load_eval_policy(checkpoint, n_action_steps))


def group_function(benchmark: str):
    """env name -> difficulty group, for benchmarks that have groups (Meta-World); else None."""
    if benchmark != "metaworld":
        return None
    from smolvla.envs.metaworld_tasks import difficulty_of

    return lambda name: difficulty_of(name.split("/", 1)[1])


def parse_host_port(value: str) -> str:
    """ "HOST:PORT" (or a ws:// / wss:// URI) -> a websocket URI; raises BadParameter otherwise."""
    if value.startswith(("ws://", "wss://")):
        return value
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise typer.BadParameter(f"expected HOST:PORT (e.g. 127.0.0.1:8765) or a ws:// URI, got {value!r}")
    return f"ws://{host}:{port}"


def print_summary(report: dict, title: str = "evaluation") -> None:
    """A rich table: one row per task (success, partial-credit score, steps, seconds), then the groups."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title)
    for col in ("task", "episodes", "success", "score", "steps", "s/episode"):
        table.add_column(col, justify="left" if col == "task" else "right", overflow="fold")
    for name, s in report["per_task"].items():
        table.add_row(
            name.split("/", 1)[-1],  # the benchmark is in the title
            str(s["episodes"]),
            f"{100 * s['success_rate']:.1f}%",
            f"{s['mean_score']:.2f}",
            f"{s['mean_steps']:.0f}",
            f"{s['mean_seconds']:.1f}",
        )
    for group, rate in report.get("per_group_success_rate", {}).items():
        table.add_row(f"group: {group}", "", f"{100 * rate:.1f}%", "", "", "", style="cyan")
    o = report["overall"]
    table.add_row(
        "overall",
        str(o["episodes"]),
        f"{100 * o['success_rate']:.1f}%",
        f"{o['mean_score']:.2f}",
        f"{o['mean_steps']:.0f}",
        f"{o['mean_seconds']:.1f}",
        style="bold",
    )
    console = Console()
    console.print(table)
    errors = report.get("engine_errors")
    if errors:  # a score the engine's errors explain must not read as the policy's
        codes = ", ".join(f"{code} x{n}" for code, n in sorted(errors["by_code"].items()))
        head = f"engine errors: {errors['total']} in {errors['episodes']} episode(s)"
        console.print(Text.assemble((head, "bold red"), f" ({codes}); last: {errors['last']}"))  # no markup parsing


def _run(
    cfg,
    checkpoint: Path | None,
    remote: str | None,
    async_: bool,
    client: dict,
    meta: dict,
    n_action_steps: int | None,
    finished: list,
) -> list:
    """Play every episode of `cfg` in-process, through an in-process server (--async) or a remote one.
    With --async the server's forward-pass times go into meta["server_forward"]. `finished` receives each
    episode as it ends (what a partial report holds if a later one fails)."""
    from smolvla.eval.remote import InProcessServer, RemoteDriver, latency_summary
    from smolvla.eval.runner import evaluate

    if remote is None and not async_:
        return evaluate(cfg, functools.partial(load_policy_agent, str(checkpoint), n_action_steps), finished=finished)
    if remote is not None:
        return evaluate(cfg, functools.partial(RemoteDriver, parse_host_port(remote), **client), finished=finished)
    import torch

    torch.set_num_threads(cfg.threads or 1)  # the server's forward passes run in this process
    server = InProcessServer(load_eval_policy(checkpoint, n_action_steps))
    try:
        return evaluate(cfg, functools.partial(RemoteDriver, server.uri, **client), finished=finished)
    finally:
        meta["server_forward"] = latency_summary(server.predictor.forward_s)
        server.stop()


def _check_policy_source(checkpoint: Path | None, remote: str | None, async_: bool, n_action_steps: int | None) -> None:
    """Exactly one of --checkpoint (a policy directory) / --remote, and --n-action-steps only where it
    applies and fits."""
    if remote is not None and async_:
        raise typer.BadParameter("--remote and --async are alternatives: pick one", param_hint="--remote")
    if remote is None and checkpoint is None:
        raise typer.BadParameter("give --checkpoint (or --remote HOST:PORT for a running server)")
    if remote is not None and checkpoint is not None:
        raise typer.BadParameter("--remote evaluates the server's policy; drop --checkpoint", param_hint="--remote")
    if remote is not None and n_action_steps is not None:
        raise typer.BadParameter(
            "--n-action-steps is the server's setting with --remote; drop it", param_hint="--n-action-steps"
        )
    # Checked here, before any simulator starts, and not in every worker process.
    if checkpoint is not None and not (checkpoint / "config.json").is_file():
        raise typer.BadParameter(f"{checkpoint} is not a policy directory (no config.json)", param_hint="--checkpoint")
    if checkpoint is not None and n_action_steps is not None:
        from dataclasses import replace

        from smolvla.policy.checkpoint import load_policy_config

        try:
            replace(load_policy_config(checkpoint), n_action_steps=n_action_steps)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--n-action-steps") from e


def _write_partial_report(cfg, finished: list, error: Exception, group_of, meta: dict, out: Path) -> Path:
    """The report of the episodes that finished before `error`, marked "partial" with the error."""
    from smolvla.eval.report import build_report, write_report
    from smolvla.eval.runner import sort_results

    planned = len(cfg.envs) * cfg.episodes
    report = build_report(sort_results(cfg, finished), group_of, meta)
    report["partial"] = {
        "error": f"{type(error).__name__}: {error}",
        "episodes_finished": len(finished),
        "episodes_planned": planned,
    }
    json_path, _ = write_report(report, out)
    typer.echo(f"partial report ({len(finished)} of {planned} episodes): {json_path}", err=True)
    return json_path


def eval_command(
    checkpoint: Path | None = typer.Option(None, help="policy directory (save_pretrained); not with --remote"),
    benchmark: str = choice_option("metaworld", BENCHMARKS, help="simulated benchmark"),
    tasks: str | None = typer.Option(
        None,
        help="task set or comma-separated task names; default: "
        + ", ".join(f"{v} for {k}" for k, v in DEFAULT_TASKS.items())
        + ". `smolvla tasks` lists them (so101: pick-place, stacking, sorting; libero: SUITE or SUITE/INDEX, "
        "e.g. libero_goal/3)",
    ),
    episodes: int = typer.Option(10, min=1, help="episodes per task (seeds seed .. seed + episodes - 1)"),
    workers: int = typer.Option(1, min=1, help="parallel evaluation processes"),
    seed: int = typer.Option(
        HELD_OUT_SEED, min=0, help="seed of every task's first episode (held out: datagen starts at 0)"
    ),
    image_size: int | None = typer.Option(
        None,
        min=8,
        help="camera resolution of the simulated envs (square); default: the size of the checkpoint's training "
        "frames (its datasets' cameras, else its model's input size), 64 with --remote",
    ),
    split: str | None = choice_option(
        None, SPLITS, help="so101 only: scene distribution, id (training region) or ood [default: id]"
    ),
    max_steps: int | None = typer.Option(None, min=1, help="step limit per episode (default: the env's)"),
    videos: int = typer.Option(1, min=0, help="rollout videos per task (the first episodes)"),
    out: Path = typer.Option(Path("outputs/eval"), help="folder for report.json, success.png and videos/"),
    remote: str | None = typer.Option(None, help="HOST:PORT of a running policy server (`smolvla serve`)"),
    async_: bool = typer.Option(
        False,
        "--async",
        help="serve the checkpoint in-process and drive the envs through the async engine's robot client",
    ),  # fmt: skip
    mode: str = choice_option("async", CLIENT_MODES, help="robot client mode with --remote/--async"),
    fps: float | None = typer.Option(
        None,
        help="robot client control ticks per second with --remote/--async (default: the env's rate, "
        "80 for Meta-World: real time)",
    ),
    g: float = typer.Option(0.7, help="client sends an observation when <= g * chunk_size actions remain"),
    aggregate: str = choice_option("weighted", AGGREGATE_CHOICES, help="how overlapping chunks merge"),
    token: str | None = typer.Option(None, envvar="SMOLVLA_TOKEN", help="shared secret for --remote"),
    n_action_steps: int | None = typer.Option(
        None,
        min=1,
        help="actions executed per predicted chunk before re-planning (default: the checkpoint's; the sync "
        "client's chunk cut with --async)",
    ),
    threads: int | None = typer.Option(
        None,
        min=1,
        help="torch threads per worker (default: cores // workers; 1 with --async, whose server "
        "shares the cores with the simulation)",
    ),
) -> None:
    """Evaluate a policy on simulated tasks: success rates per task and per difficulty group."""
    from smolvla.envs.registry import require_simulator, resolve_tasks
    from smolvla.eval.camera_size import eval_camera_size
    from smolvla.eval.report import build_report, write_report
    from smolvla.eval.runner import EvalConfig, seeds

    tasks = tasks or DEFAULT_TASKS[benchmark]
    try:
        envs = resolve_tasks(benchmark, tasks)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--tasks") from e
    if split is not None and benchmark != "so101":
        raise typer.BadParameter(f"{benchmark} has no scene splits; --split is for so101", param_hint="--split")
    _check_policy_source(checkpoint, remote, async_, n_action_steps)
    require_simulator(benchmark)
    camera = eval_camera_size(image_size, checkpoint)
    cfg = EvalConfig(
        envs=tuple(envs),
        episodes=episodes,
        seed=seed,
        image_size=camera.size,
        max_steps=max_steps,
        workers=workers,
        video_dir=out / "videos" if videos else None,
        videos_per_task=max(videos, 1),
        threads=threads or (1 if async_ else None),
        split=split,
    )
    meta: dict[str, Any] = {
        "checkpoint": str(checkpoint) if checkpoint else None,
        "benchmark": benchmark,
        "tasks": tasks,
        "episodes_per_task": episodes,
        "seed": seed,
        "seeds": seeds(cfg),
        "image_size": camera.size,
        "image_size_source": camera.source,
        "split": split or ("id" if benchmark == "so101" else None),
        "max_steps": max_steps,
        "n_action_steps": n_action_steps,
        "path": "remote" if remote else "async_engine" if async_ else "in_process",
    }
    if remote is not None or async_:
        meta.update(client_mode=mode, fps=fps, g=g, aggregate=aggregate)
    client = {"mode": mode, "fps": fps, "g": g, "aggregate": aggregate, "token": token}
    start = time.monotonic()
    finished: list = []
    try:
        results = _run(cfg, checkpoint, remote, async_, client, meta, n_action_steps, finished)
    except Exception as e:
        if finished:  # keep what ran: a crash at episode k must not throw away episodes 0 .. k-1
            meta["wall_seconds"] = round(time.monotonic() - start, 1)
            _write_partial_report(cfg, finished, e, group_function(benchmark), meta, out)
        raise
    meta["wall_seconds"] = round(time.monotonic() - start, 1)
    report = build_report(results, group_function(benchmark), meta)
    json_path, png = write_report(report, out)
    print_summary(
        report, title=f"{benchmark} {tasks}: {episodes} episode(s) per task, seeds {seed}..{seed + episodes - 1}"
    )
    typer.echo(f"report: {json_path}\nplot:   {png}")
    if cfg.video_dir is not None:
        typer.echo(f"videos: {cfg.video_dir}")
