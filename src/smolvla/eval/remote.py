"""Evaluation through the async engine: the policy behind a `PolicyServer`, the env driven by a `RobotClient`.

`RemoteDriver` plays whole episodes (it is not an `Agent`: the robot client, not the eval loop, decides when
the env steps). It owns an asyncio loop that it runs in the caller's thread during `play(...)`, so the
synchronous eval runner calls it like any other episode function and the env is stepped in the thread that
built it (MuJoCo's GL contexts are bound to one thread), and keeps one client connection per environment.
`InProcessServer` serves a policy on 127.0.0.1 from a background thread, timing every forward pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import numpy as np

from smolvla.envs.base import SimEnv
from smolvla.envs.video import has_own_video
from smolvla.eval.scoring import EpisodeResult
from smolvla.eval.video import write_rollout_video
from smolvla.serve.sim_robot import SimRobot

# A client gives up waiting for a chunk (and holds) after this many ticks beyond the episode's step limit:
# with a dead server an episode still ends instead of spinning forever.
TICK_SLACK = 2.0


def latency_summary(values: list[float]) -> dict[str, float]:
    """{"n", "mean_s", "median_s", "p90_s", "max_s"} of a list of durations in seconds ({"n": 0} if empty)."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "mean_s": statistics.fmean(ordered),
        "median_s": statistics.median(ordered),
        "p90_s": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "max_s": ordered[-1],
    }


class RemoteDriver:
    """Plays episodes of local envs against a policy server at `uri` (ws://host:port).

    mode "async": the client keeps executing its queue while the next chunk is computed (sends an
    observation when <= g * chunk_size actions are left); "sync": observe, wait, execute n_action_steps.
    fps: control ticks per second of wall-clock time (default: the env's own rate, i.e. real time).
    video_scale: nearest-neighbour upscaling of rollout videos made of the policy's views (an env with its own
    video rendering, `envs.video.has_own_video`, is recorded at that rendering's size instead).
    """

    def __init__(
        self,
        uri: str,
        *,
        mode: str = "async",
        fps: float | None = None,
        g: float = 0.7,
        aggregate: str = "weighted",
        token: str | None = None,
        connect_timeout_s: float = 30.0,
        video_scale: int = 1,
    ) -> None:
        from smolvla.serve.client import ClientConfig  # validates mode, fps, g and aggregate right away

        self.uri = uri
        self.fps = fps
        # Validated now with a stand-in task (and rate); each env's client gets its own task and rate.
        self._base = ClientConfig(uri=uri, task="-", fps=fps or 1.0, g=g, aggregate=aggregate, mode=mode, token=token)
        self.connect_timeout_s = connect_timeout_s
        self.video_scale = video_scale
        self._loop = asyncio.new_event_loop()
        self._stack = contextlib.AsyncExitStack()
        self._clients: dict[str, tuple[SimRobot, Any]] = {}

    def reset(self) -> None:
        """Nothing to forget between episodes: each `play` starts a fresh client episode."""

    def play(self, env: SimEnv, seed: int, max_steps: int | None, video_path: Path | None) -> EpisodeResult:
        """One episode of `env` from `seed` driven by the robot client; timing goes into `result.timing`.

        Raises `smolvla.serve.client.ServerRefused` (with the server's reason) when the server cannot serve
        the env: a refused handshake (e.g. a task its policy cannot tokenise) or an episode answered only
        with errors. Errors short of that are counted in `timing` ("errors", "error_codes", "last_error")."""
        return self._loop.run_until_complete(self._play(env, seed, max_steps, video_path))

    async def _client_for(self, env: SimEnv, max_steps: int | None, record: bool) -> tuple[SimRobot, Any]:
        from dataclasses import replace

        from smolvla.serve.client import RobotClient

        key = f"{env.name}@{id(env)}"
        if key not in self._clients:
            robot = SimRobot(env, max_steps=max_steps, record=record)
            config = replace(self._base, task=env.task, fps=self.fps or float(env.fps))
            client = await self._stack.enter_async_context(RobotClient(robot, config))
            try:
                await client.wait_connected(timeout=self.connect_timeout_s)
            except TimeoutError as e:
                raise ConnectionError(
                    f"no policy server answered at {self.uri} within {self.connect_timeout_s} s "
                    "(is `smolvla serve` running there?)"
                ) from e
            self._clients[key] = (robot, client)
        robot, client = self._clients[key]
        robot.record = record
        robot.max_steps = env.max_episode_steps if max_steps is None else max_steps
        return robot, client

    async def _play(self, env: SimEnv, seed: int, max_steps: int | None, video_path: Path | None) -> EpisodeResult:
        robot, client = await self._client_for(env, max_steps, video_path is not None)
        t0 = time.monotonic()
        robot.reset(seed)
        max_ticks = int(TICK_SLACK * robot.max_steps + 10 * client.config.fps)
        stats = await client.run_episode(max_ticks=max_ticks, until=lambda: robot.done)
        seconds = time.monotonic() - t0
        # The reset period: an observation sent just before the episode ended would otherwise hold the
        # server's one forward worker while the next episode's first request waits behind it.
        await client.wait_idle(timeout=client.config.reply_timeout_s)
        video = None
        if video_path is not None:
            # The env's own frames are crisp already; only the policy's small views are upscaled.
            scale = 1 if has_own_video(env) else self.video_scale
            video = str(write_rollout_video(np.stack(robot.frames), video_path, env.fps, scale=scale))
        lat = latency_summary(stats.latencies_s)
        timing = {
            "fps": client.config.fps,
            "ticks": stats.ticks,
            "executed_actions": stats.executed,
            "hold_steps": robot.hold_steps,
            "chunks": stats.chunks,
            "skipped": stats.skipped,
            "errors": stats.errors,
            "error_codes": dict(stats.error_codes),  # e.g. {"non_finite_action": 2}
            "last_error": stats.last_error,
            "clipped_actions": stats.clipped_actions,
            "over_budget": stats.over_budget,
            "median_round_trip_s": lat.get("median_s", float("nan")),
        }
        return EpisodeResult(
            env_name=env.name,
            seed=seed,
            success=robot.success,
            steps=robot.steps,
            seconds=seconds,
            stage_scores=dict(robot.info.get("stage_scores", {})),
            video=video,
            timing=timing,
        )

    def close(self) -> None:
        try:
            self._loop.run_until_complete(self._stack.aclose())
        finally:
            self._loop.close()


class TimedPredictor:
    """Wraps a server `Predictor`, recording the wall time of every forward pass (`forward_s`)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.spec = inner.spec
        self.supports_rtc = bool(getattr(inner, "supports_rtc", False))  # real-time chunking passes through
        self.forward_s: list[float] = []

    def check_task(self, task: str) -> None:
        self.inner.check_task(task)

    def predict(self, images: dict[str, np.ndarray], state: np.ndarray, tasks: list[str], **kw: Any) -> np.ndarray:
        t0 = time.monotonic()
        out = self.inner.predict(images, state, tasks, **kw)
        self.forward_s.append(time.monotonic() - t0)
        return out


class _LoopThread:
    """An asyncio loop running in a daemon thread; `run(coro)` blocks until the coroutine is done."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5.0)
        if not self._thread.is_alive():
            self.loop.close()


class InProcessServer:
    """Serves `policy` on `host` (default 127.0.0.1, a free port) from a background thread.

    epsilon: the server skips observations whose state is within this L2 distance of the last processed
    one (raw state units: metres for Meta-World's hand position, so the engine's 0.05 default would skip
    most observations of a slowly moving arm).
    """

    def __init__(self, policy: Any, *, host: str = "127.0.0.1", port: int = 0, epsilon: float = 1e-4) -> None:
        from smolvla.serve.runner import PolicyRunner
        from smolvla.serve.server import PolicyServer, ServerConfig

        self.predictor = TimedPredictor(PolicyRunner(policy, description=type(policy).__name__))
        self._loop = _LoopThread("smolvla-eval-server")
        config = ServerConfig(host=host, port=port, similarity_epsilon=epsilon, batch_window_s=0.0)

        async def start() -> tuple[Any, int]:
            # Built inside the loop it runs on (it creates asyncio primitives in __init__).
            server = PolicyServer(self.predictor, config)
            return server, await server.start()

        self.server, self.port = self._loop.run(start())
        self.uri = f"ws://{host}:{self.port}"

    def stop(self) -> None:
        try:
            self._loop.run(self.server.stop(), timeout=10.0)
        finally:
            self._loop.close()

    def __enter__(self) -> InProcessServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
