"""Simulator throughput and scripted-expert success rates; prints JSON to stdout.

python benchmarks/sim_envs.py speed --env metaworld/reach-v3 --image-size 64 128 256
python benchmarks/sim_envs.py experts --benchmark metaworld --tasks mt10 --episodes 20 --workers 2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def speed(env_name: str, sizes: list[int], steps: int) -> dict:
    """Physics steps/s (no rendering), render fps per image size, and full env.step rate with rendering."""
    from smolvla.envs import make_env

    out: dict = {"env": env_name, "steps": steps, "render_fps": {}, "env_steps_per_s": {}}
    for size in sizes:
        with make_env(env_name, image_size=size) as env:
            env.reset(seed=0)
            t = time.perf_counter()
            for _ in range(20):
                env.render()
            out["render_fps"][size] = round(20 / (time.perf_counter() - t), 1)
            rng = np.random.default_rng(0)
            env.reset(seed=0)
            t, n = time.perf_counter(), 0
            while n < steps:
                action = rng.uniform(env.action_low, env.action_high).astype(np.float32)
                _, _, term, trunc, _ = env.step(action)
                n += 1
                if term or trunc:
                    env.reset()
            out["env_steps_per_s"][size] = round(n / (time.perf_counter() - t), 1)
            if "physics_steps_per_s" not in out and env_name.startswith("metaworld/"):
                raw = env._env  # the bare Meta-World env: physics without our rendering
                raw.reset()
                t = time.perf_counter()
                for i in range(steps):
                    if i and i % 400 == 0:
                        raw.reset()  # Meta-World refuses to step past 500
                    raw.step(np.zeros(4, np.float32))
                out["physics_steps_per_s"] = round(steps / (time.perf_counter() - t), 1)
    return out


def experts(benchmark: str, tasks: str, episodes: int, image_size: int, workers: int, seed: int) -> dict:
    """Exactly `episodes` expert rollouts per task (seeds seed..seed+episodes-1); success rate per task."""
    from smolvla.envs.datagen import DatagenConfig, generate
    from smolvla.envs.metaworld_tasks import difficulty_of
    from smolvla.envs.registry import resolve_tasks

    names = resolve_tasks(benchmark, tasks)
    cfg = DatagenConfig(
        tuple(names), episodes, image_size=image_size, seed=seed, workers=workers, max_attempts_per_task=episodes
    )
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        reports = generate(cfg, Path(scratch))
    per_task = {n: round(r.success_rate, 4) for n, r in reports.items()}
    out = {
        "benchmark": benchmark,
        "tasks": tasks,
        "episodes_per_task": episodes,
        "seconds": round(time.monotonic() - start, 1),
        "mean_success": round(float(np.mean(list(per_task.values()))), 4),
        "per_task": per_task,
    }
    if benchmark == "metaworld":
        groups: dict[str, list[float]] = {}
        for name, rate in per_task.items():
            groups.setdefault(difficulty_of(name.partition("/")[2]), []).append(rate)
        out["per_difficulty"] = {g: round(float(np.mean(v)), 4) for g, v in groups.items()}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("speed", help="steps/s and render fps of one env")
    p.add_argument("--env", default="metaworld/reach-v3")
    p.add_argument("--image-size", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--steps", type=int, default=300)
    p = sub.add_parser("experts", help="scripted-expert success rate per task")
    p.add_argument("--benchmark", default="metaworld")
    p.add_argument("--tasks", default="mt10")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=1000, help="first seed (default avoids datagen's 0..)")
    args = parser.parse_args(argv)
    if args.cmd == "speed":
        result = speed(args.env, args.image_size, args.steps)
    else:
        result = experts(args.benchmark, args.tasks, args.episodes, args.image_size, args.workers, args.seed)
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
