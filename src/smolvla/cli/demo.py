"""`smolvla demo`: a trained policy acting in simulation through the async engine (what `make demo` runs).

    smolvla demo                     # Meta-World: the committed policy in assets/demo_policy (trained if missing)
    smolvla demo --benchmark so101   # SO-101 pick-place, stacking and sorting: the policy in assets/so101_policy
    smolvla demo --retrain           # Meta-World: run the training recipe first (expert data -> train), then the demo
    smolvla demo --quick             # a tiny random policy, one short episode: checks the whole path in seconds

The SO-101 policy is one multi-task policy for the three tasks, made by `scripts/train_so101_policy.sh` (the
stage-2 script `scripts/finetune_so101.sh` from scratch with the auxiliary object-position loss, then run again
from that policy; its `--update-asset` commits it to assets/so101_policy). Without it, `--benchmark so101` stops
with one line saying so (it takes an hour and a half to train, so the demo does not start it).

No downloads: the policy is a local checkpoint, the tokenizer is byte-level, the simulator is local.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import typer

from smolvla.cli.choices import choice_option
from smolvla.envs.so101_suite.layout import SPLITS
from smolvla.types import OBS_IMAGES_PREFIX

# The committed checkpoints live in <repo>/assets when this file is <repo>/src/smolvla/cli/demo.py (an
# editable install, as `make demo` makes), else in assets/ under the working directory.
_REPO_ASSETS = Path(__file__).resolve().parents[3] / "assets"
ASSETS = _REPO_ASSETS if _REPO_ASSETS.is_dir() else Path("assets")
DEFAULT_ASSET = ASSETS / "demo_policy"
SO101_ASSET = ASSETS / "so101_policy"
SO101_RECIPE = "scripts/train_so101_policy.sh"
QUICK_TASK = "metaworld/drawer-close-v3"


@dataclass(frozen=True)
class DemoDefaults:
    """What `smolvla demo --benchmark B` plays when not told otherwise. max_steps None: each env's own limit
    (SO-101: 300 steps, 540 for sorting, at 30 fps); quick_*: the --quick smoke test."""

    asset: Path
    tasks: str
    episodes: int
    max_steps: int | None
    quick_task: str
    quick_steps: int = 12


DEMO_BENCHMARKS = {
    "metaworld": DemoDefaults(DEFAULT_ASSET, "", 5, 200, QUICK_TASK),  # tasks: the recipe's
    "so101": DemoDefaults(SO101_ASSET, "pick-place,stacking,sorting", 5, None, "so101/pick-place"),
}


def register(app: typer.Typer) -> None:
    """Add this area's subcommands to `app`."""
    app.command(name="demo")(demo)


def _quick_policy(benchmark: str = "metaworld"):
    """A random tiny policy shaped for the benchmark: Meta-World's one 'corner2' camera and 4-d state and
    action, or the SO-101 suite's top and wrist cameras and 6 joints (a budget for its longest instruction)."""
    from smolvla.model.config import get_config
    from smolvla.policy.testing import make_tiny_policy

    if benchmark == "so101":
        from smolvla.envs.so101_suite.env import CAMERAS

        model = get_config("tiny", max_lang_tokens=80)
        return make_tiny_policy(tuple(OBS_IMAGES_PREFIX + c for c in CAMERAS), 6, 6, model=model)
    from smolvla.eval.recipe import ACTION_DIM, CAMERA_KEY, STATE_DIM

    return make_tiny_policy((CAMERA_KEY,), STATE_DIM, ACTION_DIM, model=get_config("tiny", max_lang_tokens=48))


def _so101_policy(asset: Path):
    """(policy, provenance) from the committed SO-101 asset; a missing one is a one-line error saying how
    to make it (training it takes hours, so the demo does not start it)."""
    from smolvla.policy.checkpoint import is_policy_dir

    if not is_policy_dir(asset):
        raise FileNotFoundError(
            f"no SO-101 policy at {asset} (config.json and stats.safetensors): make one with {SO101_RECIPE} "
            f"(--update-asset writes assets/so101_policy) or copy a trained policy folder to {asset}"
        )
    return _load_asset(asset)


def _load_asset(asset: Path):
    """(policy, provenance) of a committed policy directory, with its provenance.json when it has one."""
    from smolvla.policy.checkpoint import load_policy

    provenance_file = asset / "provenance.json"
    provenance = json.loads(provenance_file.read_text()) if provenance_file.is_file() else {}
    return load_policy(asset), {"policy": str(asset), "trained_here": False, "provenance": provenance}


def _resolve_policy(asset: Path, retrain: bool, out: Path, workers: int):
    """(policy, provenance) from the asset, or from the training recipe when asked or when it is missing."""
    from smolvla.eval.recipe import DemoRecipe, train_demo_policy
    from smolvla.policy.checkpoint import is_policy_dir, load_policy

    if not retrain and is_policy_dir(asset):
        return _load_asset(asset)
    if not retrain:
        typer.echo(f"no demo policy at {asset}: training one with the recipe (several minutes on 2 cores)")
    t0 = time.monotonic()
    path = train_demo_policy(DemoRecipe(), out / "recipe", workers=workers)
    return load_policy(path), {"policy": str(path), "trained_here": True, "train_wall_s": time.monotonic() - t0}


def _print_timing(report: dict) -> None:
    for mode, s in report["engine"].items():
        inf, rtt = s["inference_per_chunk"], s["round_trip_per_chunk"]
        line = f"{mode:>5}: success {100 * s['success_rate']:.0f}%, score {s['mean_score']:.2f}"
        line += f", episode {s['mean_episode_s']:.2f} s ({s['mean_steps']:.0f} steps, {s['hold_steps']} hold steps)"
        line += f", {s['chunks']} chunks"
        if inf.get("n"):
            line += f"; inference/chunk median {1000 * inf['median_s']:.0f} ms (p90 {1000 * inf['p90_s']:.0f} ms)"
        if rtt.get("n"):
            line += f", round trip median {1000 * rtt['median_s']:.0f} ms"
        typer.echo(line)


def _policy_for(benchmark: str, asset: Path | None, retrain: bool, quick: bool, out: Path, workers: int):
    """(policy, meta, camera size of its envs): the asked benchmark's policy, checked before any simulator."""
    from smolvla.eval.camera_size import checkpoint_camera_size

    if quick:
        policy = _quick_policy(benchmark)
        return policy, {"policy": "random tiny policy (--quick)", "trained_here": False}, policy.config.image_size
    asset = asset or DEMO_BENCHMARKS[benchmark].asset
    if benchmark == "so101":
        if retrain:
            raise typer.BadParameter(f"the SO-101 policy is trained by {SO101_RECIPE}, not by the demo")
        policy, meta = _so101_policy(asset)
    else:
        policy, meta = _resolve_policy(asset, retrain, out, workers)
    # Render at the size of the frames the policy was trained on (its run's datasets, else its input size).
    return policy, meta, checkpoint_camera_size(Path(meta["policy"])).size


def demo(
    benchmark: str = choice_option(
        "metaworld", tuple(DEMO_BENCHMARKS), help="metaworld (two tasks) or so101 (pick-place, stacking, sorting)"
    ),
    asset: Path | None = typer.Option(
        None, help=f"trained policy directory to demo (default: {DEFAULT_ASSET}, or {SO101_ASSET} for so101)"
    ),
    retrain: bool = typer.Option(
        False, "--retrain", help="metaworld: train a policy with the recipe even if the asset exists"
    ),
    quick: bool = typer.Option(False, "--quick", help="tiny random policy, one short episode (smoke test)"),
    tasks: str | None = typer.Option(
        None, help="comma-separated tasks of the benchmark (default: the recipe's two, or all three so101 tasks)"
    ),
    episodes: int | None = typer.Option(None, min=1, help="episodes per task (default 5; 1 with --quick)"),
    max_steps: int | None = typer.Option(
        None, min=1, help="step limit per episode (default 200 for metaworld, the env's for so101; 12 with --quick)"
    ),
    split: str | None = choice_option(None, SPLITS, help="so101 only: scene distribution [default: id]"),
    sync: bool = typer.Option(True, "--sync/--no-sync", help="also replay the episodes in sync mode to compare"),
    fps: float | None = typer.Option(
        None,
        help="robot client control rate, ticks per second of wall clock (default: the env's, real time: "
        "80 for metaworld, 30 for so101)",
    ),
    out: Path = typer.Option(Path("outputs/demo"), help="folder for report.json, success.png, videos/"),
    workers: int = typer.Option(2, min=1, help="processes for expert data generation when training"),
) -> None:
    """Show a trained SmolVLA policy doing simulated tasks through the async inference engine."""
    if split is not None and benchmark != "so101":
        raise typer.BadParameter(f"{benchmark} has no scene splits; --split is for so101", param_hint="--split")
    if retrain and not quick and benchmark == "metaworld":  # said before the imports and simulator start-up
        typer.echo(f"--retrain: running the demo recipe in {out / 'recipe'} (expert data, then training; minutes)")
    import torch

    from smolvla.cli.evaluate import print_summary
    from smolvla.envs.registry import resolve_tasks
    from smolvla.eval.demo import DemoConfig, run_demo
    from smolvla.eval.recipe import DemoRecipe

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("smolvla.eval.recipe").setLevel(logging.INFO)  # the recipe's stages, when it trains
    start = time.monotonic()
    defaults = DEMO_BENCHMARKS[benchmark]
    default_tasks = defaults.tasks or ",".join(DemoRecipe().tasks)
    try:
        env_names = resolve_tasks(benchmark, tasks or (defaults.quick_task if quick else default_tasks))
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--tasks") from e
    policy, meta, image_size = _policy_for(benchmark, asset, retrain, quick, out, workers)
    # One torch thread for serving (training above used them all): the simulation and the robot client
    # need the other core of a 2-core machine, and oversubscribed threads slow every forward pass.
    torch.set_num_threads(1)
    cfg = DemoConfig(
        env_names=tuple(env_names),
        out_dir=out,
        episodes=episodes or (1 if quick else defaults.episodes),
        max_steps=max_steps or (defaults.quick_steps if quick else defaults.max_steps),
        image_size=image_size,
        fps=fps,
        compare_sync=sync,
        split=split or ("id" if benchmark == "so101" else None),
    )
    params = sum(p.numel() for p in policy.parameters())
    meta.update(benchmark=benchmark, parameters=params, chunk_size=policy.config.chunk_size, torch_threads=1)
    rate = f"{fps:g} Hz" if fps else "the env's rate (real time)"
    typer.echo(
        f"policy: {meta['policy']} ({params / 1e6:.2f}M parameters, {image_size} px cameras), server on "
        f"127.0.0.1, client at {rate}"
    )
    report = run_demo(policy, cfg, meta)
    report["meta"]["demo_wall_s"] = time.monotonic() - start
    (out / "report.json").write_text(json.dumps(report, indent=2))
    print_summary(report, title=f"SmolVLA demo, {benchmark} (async engine, held-out seeds)")
    _print_timing(report)
    typer.echo(f"report: {out / 'report.json'}  plot: {out / 'success.png'}  videos: {out / 'videos'}")
    typer.echo(f"total {time.monotonic() - start:.0f} s")
