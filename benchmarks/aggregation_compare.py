"""Chunk aggregation (latest, weighted average, RTC) and sync vs async on a trained simulation policy.

Policy: the committed Meta-World demo policy (`assets/demo_policy`, chunk 30, trained on
button-press-topdown and drawer-close). Each configuration plays the same held-out seeds through the real
robot client (`SimRobot` around the env, `--fps` control ticks per second) in one of two clocks:

- `--clock virtual` (default): `smolvla.serve.lockstep`, the real client and the server's session logic
  in lockstep; a forward's reply arrives `round(latency * fps)` ticks after the one forward worker is
  free, whatever the forward's wall time. Figures do not depend on how loaded the CPU is.
- `--clock wall`: the real server on 127.0.0.1 with every forward padded to `--latency` seconds (a
  forward slower than that, e.g. RTC's guided sampling on a loaded CPU, is not padded; see
  `median_forward_s`), the client ticking in real time.

Per configuration: success rate, mean episode time (s, successful episodes) and ticks, hold ticks, tasks
per minute of working time (wall clock), and the action jump at chunk boundaries: ||a_t - a_{t-1}|| (raw units) at the
first timestep each merged chunk could change, against the same at every other timestep.

    python benchmarks/aggregation_compare.py --episodes 3 --latency 0.1,0.5,1.0,1.5

Prints JSON. Costs about (episodes x tasks x modes x latencies) short episodes on one torch thread.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import numpy as np
import torch

from smolvla.envs.registry import HELD_OUT_SEED, make_env
from smolvla.policy.policy import SmolVLAPolicy
from smolvla.policy.rtc import RTCConfig
from smolvla.serve.client import ClientConfig, RobotClient
from smolvla.serve.lockstep import LockstepServer, connect_lockstep, run_lockstep_episode
from smolvla.serve.protocol import Hello
from smolvla.serve.runner import PolicyRunner
from smolvla.serve.server import PolicyServer, ServerConfig
from smolvla.serve.sim_robot import SimRobot

DEMO_TASKS = ("metaworld/button-press-topdown-v3", "metaworld/drawer-close-v3")


class PaddedPredictor:
    """A server predictor whose every forward takes at least `latency_s` of wall time."""

    def __init__(self, inner: PolicyRunner, latency_s: float) -> None:
        self.inner, self.latency_s = inner, latency_s
        self.spec, self.supports_rtc = inner.spec, inner.supports_rtc
        self.forward_s: list[float] = []

    def check_task(self, task: str) -> None:
        self.inner.check_task(task)

    def predict(self, images, state, tasks, rtc=None) -> np.ndarray:
        start = time.monotonic()
        out = self.inner.predict(images, state, tasks) if rtc is None else self.inner.predict(images, state, tasks, rtc)
        elapsed = time.monotonic() - start
        self.forward_s.append(elapsed)
        time.sleep(max(0.0, self.latency_s - elapsed))
        return out


class RecordingRobot(SimRobot):
    """SimRobot that keeps the actions it executed (not the holds), for the boundary jumps."""

    def reset(self, seed: int | None) -> dict[str, Any]:
        self.executed: list[np.ndarray] = []
        return super().reset(seed)

    def send_action(self, action: np.ndarray) -> None:
        self.executed.append(np.asarray(action, np.float32).copy())
        super().send_action(action)


def boundary_jumps(actions: list[np.ndarray], merged_at: list[int]) -> tuple[list[float], list[float]]:
    """(||a_t - a_{t-1}|| at chunk boundaries t, the same at every other t >= 1) over executed actions."""
    boundaries = {t for t in merged_at if 1 <= t < len(actions)}
    at, elsewhere = [], []
    for t in range(1, len(actions)):
        jump = float(np.linalg.norm(actions[t] - actions[t - 1]))
        (at if t in boundaries else elsewhere).append(jump)
    return at, elsewhere


def _client(robot: RecordingRobot, env, mode: str, uri: str, args) -> RobotClient:
    aggregate = "latest" if mode == "sync" else mode
    config = ClientConfig(
        uri=uri,
        task=env.task,
        fps=args.fps,
        g=args.g,
        aggregate=aggregate,
        mode="sync" if mode == "sync" else "async",
    )
    return RobotClient(robot, config)


def _record(robot: RecordingRobot, stats) -> dict:
    at, elsewhere = boundary_jumps(robot.executed, stats.merged_at)
    return {
        "success": robot.success,
        "seconds": stats.duration_s,
        "ticks": stats.ticks,
        "hold_ticks": stats.hold_ticks,
        "chunks": stats.chunks,
        "boundary_jumps": at,
        "other_jumps": elsewhere,
    }


async def _play_wall(port: int, env, mode: str, args) -> list[dict]:
    robot = RecordingRobot(env, max_steps=args.max_steps)
    episodes = []
    async with _client(robot, env, mode, f"ws://127.0.0.1:{port}", args) as client:
        await client.wait_connected(30)
        for i in range(args.episodes):
            robot.reset(args.seed + i)
            stats = await client.run_episode(max_ticks=3 * args.max_steps + 600, until=lambda: robot.done)
            await client.wait_idle(timeout=30.0)  # reset period: the next episode starts with an idle server
            episodes.append(_record(robot, stats))
    return episodes


async def _play_virtual(predictor, latency_s: float, env, mode: str, args) -> list[dict]:
    robot = RecordingRobot(env, max_steps=args.max_steps)
    client = _client(robot, env, mode, "ws://lockstep", args)
    hello = Hello(tuple(robot.camera_shapes), dict(robot.camera_shapes), robot.state_dim, robot.action_dim, env.task)
    server = LockstepServer(predictor, hello, round(latency_s * args.fps), args.fps, epsilon=1e-4)
    connect_lockstep(client, server)
    episodes = []
    for i in range(args.episodes):
        robot.reset(args.seed + i)
        stats = await run_lockstep_episode(client, server, 3 * args.max_steps + 600, until=lambda: robot.done)
        episodes.append(_record(robot, stats))
    return episodes


def _summary(episodes: list[dict], fps: float) -> dict:
    ok = [e for e in episodes if e["success"]]
    working = sum(e["seconds"] for e in episodes)
    at = [j for e in episodes for j in e["boundary_jumps"]]
    other = [j for e in episodes for j in e["other_jumps"]]
    mean = lambda xs: round(statistics.fmean(xs), 4) if xs else None
    return {
        "episodes": len(episodes),
        "success_rate": round(len(ok) / len(episodes), 3),
        "mean_success_s": mean([e["seconds"] for e in ok]),
        "mean_success_ticks": mean([e["ticks"] for e in ok]),
        # Ticks / fps: the task time at the nominal rate, immune to the event loop running late on a busy CPU.
        "mean_success_tick_s": mean([e["ticks"] / fps for e in ok]),
        "hold_ticks": sum(e["hold_ticks"] for e in episodes),
        "chunks": sum(e["chunks"] for e in episodes),
        "tasks_per_min": round(60.0 * len(ok) / working, 2) if working else None,
        "boundary_jump": mean(at),
        "other_jump": mean(other),
        "boundary_jump_ratio": round(statistics.fmean(at) / statistics.fmean(other), 2) if at and other else None,
    }


async def _run(args) -> dict:
    policy = SmolVLAPolicy.from_pretrained(args.policy)
    rtc = RTCConfig(schedule=args.rtc_schedule, max_guidance_weight=args.rtc_max_weight)
    runner = PolicyRunner(policy, rtc=rtc)
    envs = [make_env(name, image_size=args.image_size) for name in args.tasks]
    out: dict = {"config": vars(args), "rows": []}
    try:
        for latency in args.latency:
            predictor = PaddedPredictor(runner, latency if args.clock == "wall" else 0.0)
            if args.clock == "wall":
                server = PolicyServer(predictor, ServerConfig(port=0, batch_window_s=0.0, similarity_epsilon=1e-4))
                await server.start()
            for mode in args.modes:
                predictor.forward_s.clear()
                if args.clock == "wall":
                    episodes = [e for env in envs for e in await _play_wall(server.port, env, mode, args)]
                else:
                    episodes = [e for env in envs for e in await _play_virtual(predictor, latency, env, mode, args)]
                forward = sorted(predictor.forward_s)
                row = {"latency_s": latency, "mode": mode, **_summary(episodes, args.fps)}
                row["median_forward_s"] = round(forward[len(forward) // 2], 3) if forward else None
                out["rows"].append(row)
                print(json.dumps(row), flush=True)
            if args.clock == "wall":
                await server.stop()
    finally:
        for env in envs:
            env.close()
    return out


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", default="assets/demo_policy")
    parser.add_argument("--tasks", type=lambda s: tuple(s.split(",")), default=DEMO_TASKS)
    parser.add_argument("--episodes", type=int, default=3, help="Per task and configuration.")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="First held-out seed.")
    parser.add_argument("--latency", type=_floats, default=[0.1, 0.5, 1.0, 1.5], help="Comma list of s per forward.")
    parser.add_argument("--modes", type=lambda s: s.split(","), default=["sync", "latest", "weighted", "rtc"])
    parser.add_argument("--fps", type=float, default=30.0, help="Client ticks per second (Meta-World runs at 80).")
    parser.add_argument("--g", type=float, default=0.7)
    parser.add_argument("--max-steps", type=int, default=400, help="Env steps per episode, holds included.")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--rtc-schedule", default="exp")
    parser.add_argument("--rtc-max-weight", type=float, default=5.0)
    parser.add_argument("--clock", choices=("virtual", "wall"), default="virtual", help="See the module docstring.")
    parser.add_argument("--threads", type=int, default=1, help="torch threads.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    result = asyncio.run(_run(args))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
