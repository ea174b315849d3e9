"""`smolvla demo`: a trained policy acting in Meta-World through the async engine (what `make demo` runs).

    smolvla demo                  # the committed policy in assets/demo_policy (trains one if it is missing)
    smolvla demo --retrain        # run the training recipe first (expert data -> train), then the demo
    smolvla demo --quick          # a tiny random policy, one short episode: checks the whole path in seconds

No downloads: the policy is a local checkpoint, the tokenizer is byte-level, the simulator is local.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import typer

# The committed checkpoint: <repo>/assets/demo_policy when this file is <repo>/src/smolvla/cli/demo.py (an
# editable install, as `make demo` makes), else assets/demo_policy under the working directory.
_REPO_ASSET = Path(__file__).resolve().parents[3] / "assets" / "demo_policy"
DEFAULT_ASSET = _REPO_ASSET if _REPO_ASSET.is_dir() else Path("assets") / "demo_policy"
QUICK_TASK = "metaworld/drawer-close-v3"


def register(app: typer.Typer) -> None:
    """Add this area's subcommands to `app`."""
    app.command(name="demo")(demo)


def _quick_policy():
    """A random tiny policy shaped for Meta-World (one 'corner2' camera, 4-d state and action)."""
    from smolvla.eval.recipe import ACTION_DIM, CAMERA_KEY, STATE_DIM
    from smolvla.model.config import get_config
    from smolvla.policy.testing import make_tiny_policy

    model = get_config("tiny", max_lang_tokens=48)
    return make_tiny_policy((CAMERA_KEY,), STATE_DIM, ACTION_DIM, model=model)


def _resolve_policy(asset: Path, retrain: bool, out: Path, workers: int):
    """(policy, provenance) from the asset, or from the training recipe when asked or when it is missing."""
    from smolvla.eval.recipe import DemoRecipe, train_demo_policy
    from smolvla.policy.checkpoint import is_policy_dir, load_policy

    if not retrain and is_policy_dir(asset):
        provenance_file = asset / "provenance.json"
        provenance = json.loads(provenance_file.read_text()) if provenance_file.is_file() else {}
        return load_policy(asset), {"policy": str(asset), "trained_here": False, "provenance": provenance}
    if not retrain:
        typer.echo(f"no demo policy at {asset}: training one with the recipe (several minutes on 2 cores)")
    t0 = time.monotonic()
    path = train_demo_policy(DemoRecipe(), out / "recipe", workers=workers)
    return load_policy(path), {"policy": str(path), "trained_here": True, "train_wall_s": time.monotonic() - t0}


def _print_timing(report: dict) -> None:
    for mode, s in report["engine"].items():
        inf, rtt = s["inference_per_chunk"], s["round_trip_per_chunk"]
        line = f"{mode:>5}: success {100 * s['success_rate']:.0f}%, episode {s['mean_episode_s']:.2f} s"
        line += f" ({s['mean_steps']:.0f} steps, {s['hold_steps']} hold steps), {s['chunks']} chunks"
        if inf.get("n"):
            line += f"; inference/chunk median {1000 * inf['median_s']:.0f} ms (p90 {1000 * inf['p90_s']:.0f} ms)"
        if rtt.get("n"):
            line += f", round trip median {1000 * rtt['median_s']:.0f} ms"
        typer.echo(line)


def demo(
    asset: Path = typer.Option(DEFAULT_ASSET, help="trained policy directory to demo"),
    retrain: bool = typer.Option(False, "--retrain", help="train a policy with the recipe even if the asset exists"),
    quick: bool = typer.Option(False, "--quick", help="tiny random policy, one short episode (smoke test)"),
    tasks: str | None = typer.Option(None, help="comma-separated Meta-World tasks (default: the recipe's)"),
    episodes: int | None = typer.Option(None, min=1, help="episodes per task (default 5; 1 with --quick)"),
    max_steps: int | None = typer.Option(None, min=1, help="step limit per episode (default 200; 12 with --quick)"),
    sync: bool = typer.Option(True, "--sync/--no-sync", help="also replay the episodes in sync mode to compare"),
    fps: float | None = typer.Option(
        None, help="robot client control rate, ticks per second of wall clock (default 80: Meta-World real time)"
    ),
    out: Path = typer.Option(Path("outputs/demo"), help="folder for report.json, success.png, videos/"),
    workers: int = typer.Option(2, min=1, help="processes for expert data generation when training"),
) -> None:
    """Show a trained SmolVLA policy solving Meta-World tasks through the async inference engine."""
    if retrain and not quick:  # say so before the imports and the simulator start-up (tens of seconds)
        typer.echo(f"--retrain: running the demo recipe in {out / 'recipe'} (expert data, then training; minutes)")
    import torch

    from smolvla.cli.evaluate import print_summary
    from smolvla.envs.registry import resolve_tasks
    from smolvla.eval.demo import DemoConfig, run_demo
    from smolvla.eval.recipe import DemoRecipe

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("smolvla.eval.recipe").setLevel(logging.INFO)  # the recipe's stages, when it trains
    start = time.monotonic()
    recipe = DemoRecipe()
    if quick:
        policy, meta = _quick_policy(), {"policy": "random tiny policy (--quick)", "trained_here": False}
        default_tasks, default_episodes, default_steps = QUICK_TASK, 1, 12
    else:
        policy, meta = _resolve_policy(asset, retrain, out, workers)
        default_tasks, default_episodes, default_steps = ",".join(recipe.tasks), 5, recipe.eval_max_steps
    # One torch thread for serving (training above used them all): the simulation and the robot client
    # need the other core of a 2-core machine, and oversubscribed threads slow every forward pass.
    torch.set_num_threads(1)
    try:
        env_names = resolve_tasks("metaworld", tasks or default_tasks)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--tasks") from e
    cfg = DemoConfig(
        env_names=tuple(env_names),
        out_dir=out,
        episodes=episodes or default_episodes,
        max_steps=max_steps or default_steps,
        fps=fps,
        compare_sync=sync,
    )
    params = sum(p.numel() for p in policy.parameters())
    meta.update(parameters=params, chunk_size=policy.config.chunk_size, torch_threads=1)
    rate = f"{fps:g} Hz" if fps else "the env's rate (real time)"
    typer.echo(f"policy: {meta['policy']} ({params / 1e6:.2f}M parameters), server on 127.0.0.1, client at {rate}")
    report = run_demo(policy, cfg, meta)
    report["meta"]["demo_wall_s"] = time.monotonic() - start
    (out / "report.json").write_text(json.dumps(report, indent=2))
    print_summary(report, title="SmolVLA demo (async engine, held-out seeds)")
    _print_timing(report)
    typer.echo(f"report: {out / 'report.json'}  plot: {out / 'success.png'}  videos: {out / 'videos'}")
    typer.echo(f"total {time.monotonic() - start:.0f} s")
