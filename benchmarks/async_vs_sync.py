"""Synchronous vs asynchronous inference in simulation, and server throughput with several clients.

Robot: the simulated `ReachingRobot` (joint 0 always travels 1 rad; the task succeeds when every joint is
within 0.05 rad of its goal). Policy: the tiny SmolVLAPolicy (random weights, chunk 50) runs a real
forward pass for every chunk, so inference latency is real; because random weights cannot solve any
task, the actions it returns are replaced by a scripted reaching planner computed from the same
observation. `--added-latency` adds seconds per forward to emulate a bigger model or a slower link.

Two clocks (`--clock`):
- `virtual` (default): `smolvla.serve.lockstep`, the real client and the server's session logic in
  lockstep; a reply arrives `round(latency * fps)` ticks (`--added-latency` only, the forward's own wall
  time does not count) after the one forward worker is free; windows are virtual seconds (ticks / fps).
  Independent of how loaded the machine is.
- `wall`: everything in one process on 127.0.0.1 (forwards in the server's worker thread), the client
  ticking in real time; latency = the forward's wall time + `--added-latency`.
Prints JSON. The throughput part (several clients, batched forwards) is always on the wall clock.

Between episodes the client waits until no observation is in flight (`RobotClient.wait_idle`, the reset
period of a real robot): an observation sent just before the goal was reached otherwise keeps the one
forward worker busy for up to a whole latency, and the next episode's first chunk queues behind it. That
wait is not counted in the window (which measures the robot's working time) nor in any task's time.

    python benchmarks/async_vs_sync.py --window-s 60 --added-latency 0,0.3,1.0
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import time

import numpy as np
import torch
from websockets.asyncio.client import connect

from smolvla.model.config import get_config
from smolvla.policy.testing import make_tiny_policy
from smolvla.serve.client import ClientConfig, RobotClient
from smolvla.serve.codec import pack, unpack
from smolvla.serve.lockstep import LockstepServer, connect_lockstep, run_lockstep_episode
from smolvla.serve.protocol import SERVER_TO_CLIENT, Actions, Hello, Observation, parse
from smolvla.serve.robot import ReachingRobot, reaching_expert_chunk
from smolvla.serve.runner import PolicyRunner
from smolvla.serve.server import PolicyServer, ServerConfig
from smolvla.types import OBS_STATE


class TimedExpertPolicy:
    """The tiny SmolVLAPolicy's real forward (for its latency), returning the scripted planner's chunk."""

    def __init__(self, policy, max_step: float) -> None:
        self.policy, self.config, self.max_step = policy, policy.config, max_step

    def predict_action_chunk(self, batch: dict) -> torch.Tensor:
        self.policy.predict_action_chunk(batch)
        states = batch[OBS_STATE].cpu().numpy()
        plans = [reaching_expert_chunk(s, self.config.chunk_size, self.max_step) for s in states]
        return torch.from_numpy(np.stack(plans))


async def _episodes(port: int, args, mode: str, window_s: float) -> dict:
    """Run episodes back to back for `window_s` seconds; an episode still running at the end is not counted."""
    robot = ReachingRobot(n_joints=args.n_joints, max_step=args.max_step, seed=0)
    config = ClientConfig(uri=f"ws://127.0.0.1:{port}", task="reach goal", fps=args.fps, g=args.g, mode=mode)
    times, ticks, holds, failures, seed = [], [], [], 0, 0
    latencies: list[float] = []
    over_budget, working = 0, 0.0
    async with RobotClient(robot, config) as client:
        await client.wait_connected(30)
        while (left := window_s - working) > 0:
            robot.reset(seed)
            seed += 1
            stats = await client.run_episode(max_ticks=max(1, int(left * args.fps)), until=lambda: robot.success)
            working += stats.duration_s
            await client.wait_idle(timeout=30.0)  # the reset period: not working time
            latencies += stats.latencies_s
            over_budget += stats.over_budget
            if robot.success:
                times.append(stats.duration_s)
                ticks.append(stats.ticks)
                holds.append(stats.hold_ticks)
            elif working < window_s - 1.0 / args.fps:
                failures += 1
    elapsed = working
    return {
        "mode": mode,
        "tasks_completed": len(times),
        "failures": failures,
        "tasks_per_min": round(60.0 * len(times) / elapsed, 2),
        "median_chunk_latency_s": round(statistics.median(latencies), 4) if latencies else None,
        "chunks_over_latency_budget": over_budget,
        # Per completed task, seeds 0, 1, ... in order: wall seconds, control ticks, ticks spent holding.
        "task_s": [round(t, 3) for t in times],
        "task_ticks": ticks,
        "task_hold_ticks": holds,
    }


async def _episodes_virtual(runner: PolicyRunner, args, mode: str, window_s: float, latency: float) -> dict:
    """As `_episodes` on the virtual clock: episodes back to back until `window_s` virtual seconds."""
    robot = ReachingRobot(n_joints=args.n_joints, max_step=args.max_step, seed=0)
    config = ClientConfig(uri="ws://lockstep", task="reach goal", fps=args.fps, g=args.g, mode=mode)
    client = RobotClient(robot, config)
    hello = Hello(
        tuple(robot.camera_shapes), dict(robot.camera_shapes), robot.state_dim, robot.action_dim, "reach goal"
    )
    server = LockstepServer(runner, hello, round(latency * args.fps), args.fps, epsilon=args.epsilon)
    connect_lockstep(client, server)
    times, ticks, holds, failures, seed, working = [], [], [], 0, 0, 0.0
    while (left := window_s - working) > 0:
        robot.reset(seed)
        seed += 1
        max_ticks = max(1, int(round(left * args.fps)))
        stats = await run_lockstep_episode(client, server, max_ticks, until=lambda: robot.success)
        working += stats.duration_s
        if robot.success:
            times.append(stats.duration_s)
            ticks.append(stats.ticks)
            holds.append(stats.hold_ticks)
        elif working < window_s - 1.0 / args.fps:
            failures += 1
    return {
        "mode": mode,
        "tasks_completed": len(times),
        "failures": failures,
        "tasks_per_min": round(60.0 * len(times) / working, 2),
        "forwards": len(server.forwards),
        "task_s": [round(t, 3) for t in times],
        "task_ticks": ticks,
        "task_hold_ticks": holds,
    }


async def _load_client(port: int, robot: ReachingRobot, until: float, counter: list[int]) -> None:
    """Send a must-go observation, wait for its chunk, repeat until the deadline."""
    hello = Hello(
        camera_keys=tuple(robot.camera_shapes),
        image_shapes=dict(robot.camera_shapes),
        state_dim=robot.state_dim,
        action_dim=robot.action_dim,
        task="reach goal",
    )
    raw = robot.get_observation()
    async with connect(f"ws://127.0.0.1:{port}", proxy=None, max_size=None) as ws:
        await ws.send(pack(hello.to_wire()))
        await ws.recv()
        obs_id = 0
        while time.monotonic() < until:
            obs_id += 1
            images = {k: raw[k] for k in robot.camera_shapes}
            obs = Observation(obs_id, 0, obs_id, True, images, raw[OBS_STATE], "reach goal", time.monotonic())
            await ws.send(pack(obs.to_wire()))
            reply = parse(unpack(await ws.recv()), SERVER_TO_CLIENT)
            counter[0] += isinstance(reply, Actions)


async def _throughput(runner: PolicyRunner, args, clients: int) -> dict:
    server = PolicyServer(runner, ServerConfig(port=0, batch_window_s=args.batch_window_ms / 1000.0, max_batch=8))
    await server.start()
    counter, robots = [0], [ReachingRobot(n_joints=args.n_joints, seed=i) for i in range(clients)]
    start = time.monotonic()
    until = start + args.throughput_s
    await asyncio.gather(*(_load_client(server.port, r, until, counter) for r in robots))
    elapsed = time.monotonic() - start
    sizes = server.forward_batch_sizes
    await server.stop()
    return {
        "clients": clients,
        "chunks_per_s": round(counter[0] / elapsed, 2),
        "forwards_per_s": round(len(sizes) / elapsed, 2),
        "mean_batch": round(statistics.fmean(sizes), 2) if sizes else None,
    }


async def _main(args) -> dict:
    model = dataclasses.replace(get_config("tiny"), chunk_size=args.chunk_size)
    cam = (ReachingRobot.CAMERA,)
    policy = make_tiny_policy(cam, state_dim=2 * args.n_joints, action_dim=args.n_joints, model=model)
    expert = TimedExpertPolicy(policy, args.max_step)
    out: dict = {"config": vars(args), "async_vs_sync": [], "throughput": []}
    for latency in args.added_latency:
        if args.clock == "virtual":
            runner = PolicyRunner(expert)
            rows = {m: await _episodes_virtual(runner, args, m, args.window_s, latency) for m in ("sync", "async")}
            compared = _compare(rows["sync"], rows["async"], args.fps)
            out["async_vs_sync"].append({"added_latency_s": latency, **rows, **compared})
            continue
        runner = PolicyRunner(expert, added_latency_s=latency)
        server = PolicyServer(runner, ServerConfig(port=0, batch_window_s=0.0, similarity_epsilon=args.epsilon))
        await server.start()
        await _episodes(server.port, args, "async", 2.0)  # warm-up: first forwards are slow
        rows = {mode: await _episodes(server.port, args, mode, args.window_s) for mode in ("sync", "async")}
        await server.stop()
        compared = _compare(rows["sync"], rows["async"], args.fps)
        out["async_vs_sync"].append({"added_latency_s": latency, **rows, **compared})
    runner = PolicyRunner(expert, added_latency_s=args.throughput_latency)
    for clients in args.clients:
        out["throughput"].append(await _throughput(runner, args, clients))
    out["paper"] = {
        "task_time_reduction": 0.3,
        "tasks_per_min_ratio": 2.1,
        "note": "SO-100 pick-place, 13.75 s -> 9.7 s",
    }
    return out


def _compare(sync: dict, asyn: dict, fps: float) -> dict:
    """Time per task over the seeds both modes completed (same tasks), and the tasks-per-minute ratio."""
    n = min(len(sync["task_s"]), len(asyn["task_s"]))
    if n == 0 or not sync["tasks_per_min"]:
        return {}
    t_sync, t_async = statistics.fmean(sync["task_s"][:n]), statistics.fmean(asyn["task_s"][:n])
    k_sync, k_async = statistics.fmean(sync["task_ticks"][:n]), statistics.fmean(asyn["task_ticks"][:n])
    return {
        "seeds_compared": n,
        "sync_mean_s_per_task": round(t_sync, 3),
        "async_mean_s_per_task": round(t_async, 3),
        "task_time_reduction": round(1 - t_async / t_sync, 3),
        "tasks_per_min_ratio": round(asyn["tasks_per_min"] / sync["tasks_per_min"], 2),
        # The same in control ticks (time at the nominal rate, ticks / fps): immune to the event loop running
        # late on a loaded machine. Tasks per period at the nominal rate go as 1 / ticks per task.
        "sync_mean_tick_s_per_task": round(k_sync / fps, 3),
        "async_mean_tick_s_per_task": round(k_async / fps, 3),
        "task_ticks_reduction": round(1 - k_async / k_sync, 3),
        "tasks_per_tick_period_ratio": round(k_sync / k_async, 2),
    }


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--window-s", type=float, default=60.0, help="Fixed window per mode (s).")
    parser.add_argument("--added-latency", type=_floats, default=[0.0, 0.3, 1.0], help="Comma list of s per forward.")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--chunk-size", type=int, default=50)
    parser.add_argument("--g", type=float, default=0.7, help="Async send threshold.")
    parser.add_argument("--epsilon", type=float, default=0.05, help="Server similarity filter.")
    parser.add_argument("--n-joints", type=int, default=4)
    parser.add_argument(
        "--max-step", type=float, default=0.006, help="Robot speed, rad per tick (0.006: 5-10 s tasks)."
    )
    parser.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4])
    parser.add_argument("--throughput-s", type=float, default=5.0)
    parser.add_argument("--throughput-latency", type=float, default=0.0, help="Added s per forward there.")
    parser.add_argument("--batch-window-ms", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads.")
    parser.add_argument("--clock", choices=("virtual", "wall"), default="virtual", help="See above.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(json.dumps(asyncio.run(_main(args)), indent=2))


if __name__ == "__main__":
    main()
