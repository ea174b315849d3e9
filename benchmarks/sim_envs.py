"""Simulator throughput and scripted-expert success rates; prints JSON to stdout.

python benchmarks/sim_envs.py speed --env metaworld/reach-v3 --image-size 64 128 256
python benchmarks/sim_envs.py experts --benchmark metaworld --tasks mt10 --episodes 20 --workers 2
python benchmarks/sim_envs.py experts --benchmark so101 --tasks all --episodes 40 --split ood
python benchmarks/sim_envs.py sheet --tasks all --out docs/measurements/so101_suite   # expert PNGs + mp4s
python benchmarks/sim_envs.py timestep --substeps 2 4 8 --episodes 15   # so101 expert success vs physics step
python benchmarks/sim_envs.py libero-experts --suites libero_spatial --states 0 1 2 --out experts.json

Rates are also given per CPU-second of this process (`*_per_cpu_s`): on a shared machine wall-clock rates
measure the neighbours as much as the simulator.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _env_kwargs(env_name: str, split: str | None) -> dict:
    return {"split": split} if split is not None and env_name.startswith("so101/") else {}


def speed(env_name: str, sizes: list[int], steps: int, split: str | None = None) -> dict:
    """Physics steps/s (no rendering), render fps per image size (one camera), env.step rate with rendering
    (all cameras), and for so101 the build time of an env and its control steps/s without rendering."""
    from smolvla.envs import make_env

    out: dict = {"env": env_name, "steps": steps, "render_fps": {}, "env_steps_per_s": {}}
    for size in sizes:
        t = time.perf_counter()
        with make_env(env_name, image_size=size, **_env_kwargs(env_name, split)) as env:
            out.setdefault("build_seconds", round(time.perf_counter() - t, 2))
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
            if "physics_steps_per_s" not in out and env_name.startswith("so101/"):
                out.update(_so101_physics(env, steps))
            if "physics_steps_per_s" not in out and env_name.startswith("libero/"):
                out.update(_libero_physics(env, steps))
    return out


def _libero_physics(env, steps: int) -> dict:
    """LIBERO control steps/s without our rendering (robosuite's OSC control and physics only)."""
    env.reset(seed=0)
    idle = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float64)
    t, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        env._env.step(idle)
    return {
        "physics_steps_per_s": round(steps / (time.perf_counter() - t), 1),
        "physics_steps_per_cpu_s": round(steps / (time.process_time() - cpu), 1),
    }


def libero_experts(suites: list[str], states: list[int], out_path: Path | None) -> dict:
    """LIBERO scripted-expert success per task over the given official initial states (env seed = state
    index), without rendering; the JSON is rewritten after every task so a partial run keeps its tasks."""
    from smolvla.envs import make_env
    from smolvla.envs.libero_tasks import LIBERO_TASKS_PER_SUITE

    out: dict = {"initial_states": states, "rendering": False, "tasks": {}}
    for suite in suites:
        for index in range(LIBERO_TASKS_PER_SUITE):
            name = f"libero/{suite}/{index}"
            t, cpu = time.perf_counter(), time.process_time()
            row: dict = {"successes": [], "steps": []}
            with make_env(name, cameras=()) as env:
                row["task"] = env.task
                try:
                    expert = env.scripted_expert()
                    for state in states:
                        obs, done, info = env.reset(seed=state), False, {}
                        expert.reset()
                        while not done:
                            obs, _, term, trunc, info = env.step(expert.act(obs))
                            done = term or trunc
                        row["successes"].append(bool(info["success"]))
                        row["steps"].append(env.elapsed_steps)
                except NotImplementedError as e:  # a primitive the plan needs is missing: reported, not hidden
                    row["error"] = str(e)
            row["success_rate"] = round(float(np.mean(row["successes"])), 4) if row["successes"] else 0.0
            row["failed_states"] = [s for s, ok in zip(states, row["successes"], strict=False) if not ok]
            row["wall_s"] = round(time.perf_counter() - t, 1)
            row["cpu_s"] = round(time.process_time() - cpu, 1)
            out["tasks"][name] = row
            rates = [r["success_rate"] for r in out["tasks"].values()]
            out["mean_success"] = round(float(np.mean(rates)), 4)
            if out_path is not None:
                out_path.parent.mkdir(parents=True, exist_ok=True)
                out_path.write_text(json.dumps(out, indent=2) + "\n")
            print(f"{name}: {row['success_rate']:.2f} {row.get('error', '')}", file=sys.stderr, flush=True)
    return out


def _so101_physics(env, steps: int) -> dict:
    """Control steps/s of the physics alone (SUBSTEPS MuJoCo steps each) and the timestep it uses."""
    import mujoco

    from smolvla.envs.so101_suite.env import SUBSTEPS

    env.reset(seed=0)
    t = time.perf_counter()
    for _ in range(steps):
        mujoco.mj_step(env.model, env.data, nstep=SUBSTEPS)
    return {
        "physics_dt_s": env.model.opt.timestep,
        "substeps_per_control_step": SUBSTEPS,
        "physics_control_steps_per_s": round(steps / (time.perf_counter() - t), 1),
    }


def experts(
    benchmark: str, tasks: str, episodes: int, image_size: int, workers: int, seed: int, split: str | None = None
) -> dict:
    """Exactly `episodes` expert rollouts per task (seeds seed..seed+episodes-1); success rate per task."""
    from smolvla.envs.datagen import DatagenConfig, generate
    from smolvla.envs.metaworld_tasks import difficulty_of
    from smolvla.envs.registry import resolve_tasks

    names = resolve_tasks(benchmark, tasks)
    split = split or ("id" if benchmark == "so101" else None)
    cfg = DatagenConfig(
        tuple(names),
        episodes,
        image_size=image_size,
        seed=seed,
        workers=workers,
        max_attempts_per_task=episodes,
        split=split,
    )
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        reports = generate(cfg, Path(scratch))
    per_task = {n: round(r.success_rate, 4) for n, r in reports.items()}
    out = {
        "benchmark": benchmark,
        "tasks": tasks,
        "split": split,
        "image_size": image_size,
        "workers": workers,
        "first_seed": seed,
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


def sheet(tasks: str, split: str, seed: int, out_dir: Path, size: int, frames: int, mp4: bool = True) -> dict:
    """For each SO-101 task: one expert episode as a PNG contact sheet (`frames` moments, top | wrist camera
    at `size` px, from the env's video rendering) and, with `mp4`, a video of every step; returns steps and
    success."""
    import imageio.v3 as iio

    from smolvla.envs import make_env
    from smolvla.envs.registry import resolve_tasks
    from smolvla.eval.video import write_rollout_video

    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict = {"split": split, "seed": seed, "size": size, "episodes": {}}
    for name in resolve_tasks("so101", tasks):
        with make_env(name, image_size=64, split=split) as env:
            expert = env.scripted_expert()
            obs = env.reset(seed)
            expert.reset()
            video = [env.video_frame(size)]
            done, info = False, {}
            while not done:
                obs, _, term, trunc, info = env.step(expert.act(obs))
                video.append(env.video_frame(size))
                done = term or trunc
            stem = f"{name.partition('/')[2]}_{split}_seed{seed}"
            picks = np.linspace(0, len(video) - 1, frames).round().astype(int)
            rows = [np.concatenate([video[i] for i in picks[r : r + 3]], axis=1) for r in range(0, frames, 3)]
            iio.imwrite(out_dir / f"{stem}.png", np.concatenate(rows, axis=0))
            if mp4:
                write_rollout_video(np.stack(video), out_dir / f"{stem}.mp4", env.fps)
            result["episodes"][name] = {"task": env.task, "steps": len(video) - 1, **info}
    return result


def timestep(substeps: list[int], episodes: int, seed: int) -> dict:
    """SO-101 expert success per task when each 30 fps control step runs n physics steps (timestep 1/(30 n)):
    the coarsest stable timestep is the cheapest one."""
    from smolvla.envs.rollout import expert_episode
    from smolvla.envs.so101_suite import env as suite_env
    from smolvla.envs.so101_suite import scene
    from smolvla.envs.so101_suite.tasks import TASKS

    runs = []
    for n in substeps:
        scene.PHYSICS_DT, suite_env.SUBSTEPS = 1.0 / (suite_env.FPS * n), n  # read when an env is built/stepped
        run: dict = {"substeps": n, "physics_dt_s": scene.PHYSICS_DT, "success": {}}
        t = time.perf_counter()
        for task in TASKS:
            with suite_env.SO101SuiteEnv(task, image_size=16) as env:
                wins = sum(expert_episode(env, seed=seed + i).success for i in range(episodes))
            run["success"][task] = round(wins / episodes, 4)
        run["seconds"] = round(time.perf_counter() - t, 1)
        runs.append(run)
    return {"episodes_per_task": episodes, "first_seed": seed, "runs": runs}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("speed", help="steps/s and render fps of one env")
    p.add_argument("--env", default="metaworld/reach-v3")
    p.add_argument("--image-size", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--split", default=None, help="so101 only: id or ood")
    p = sub.add_parser("experts", help="scripted-expert success rate per task")
    p.add_argument("--benchmark", default="metaworld")
    p.add_argument("--tasks", default="mt10")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=1000, help="first seed (default avoids datagen's 0..)")
    p.add_argument("--split", default=None, help="so101 only: id (default) or ood")
    p = sub.add_parser("sheet", help="SO-101 expert contact sheets (PNG) and videos (mp4)")
    p.add_argument("--tasks", default="all")
    p.add_argument("--split", default="id")
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--out", type=Path, default=Path("docs/measurements/so101_suite"))
    p.add_argument("--size", type=int, default=192, help="pixels per camera")
    p.add_argument("--frames", type=int, default=6, help="moments on the sheet (rows of three)")
    p.add_argument("--no-video", dest="mp4", action="store_false", help="the PNG sheets only")
    p = sub.add_parser("timestep", help="SO-101 expert success vs physics substeps per control step")
    p.add_argument("--substeps", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--episodes", type=int, default=15)
    p.add_argument("--seed", type=int, default=1000)
    p = sub.add_parser("libero-experts", help="LIBERO expert success over official initial states")
    p.add_argument("--suites", nargs="+", default=["libero_spatial"])
    p.add_argument("--states", type=int, nargs="+", default=list(range(50)), help="initial state indices")
    p.add_argument("--out", type=Path, default=None, help="JSON file, rewritten after every task")
    args = parser.parse_args(argv)
    if args.cmd == "libero-experts":
        result = libero_experts(args.suites, args.states, args.out)
    elif args.cmd == "speed":
        result = speed(args.env, args.image_size, args.steps, args.split)
    elif args.cmd == "timestep":
        result = timestep(args.substeps, args.episodes, args.seed)
    elif args.cmd == "sheet":
        result = sheet(args.tasks, args.split, args.seed, args.out, args.size, args.frames, args.mp4)
    else:
        result = experts(
            args.benchmark, args.tasks, args.episodes, args.image_size, args.workers, args.seed, args.split
        )
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
