"""The evaluation loop: N episodes per task, optionally across worker processes, with rollout videos.

Each worker process builds its agent once (from a picklable factory, e.g. `functools.partial` of a loader
taking a checkpoint path) and its environments once, then plays the (task, seed) jobs it is handed.
Seeds are `seed + episode_index`, so a task's episodes are the same whatever the number of workers. They
start at `HELD_OUT_SEED` unless told otherwise: expert demonstrations (`smolvla datagen`) start at seed 0,
so evaluating from 0 would replay the training scenes.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from smolvla.envs.base import SimEnv
from smolvla.envs.orphans import exit_with_parent
from smolvla.envs.registry import HELD_OUT_SEED, make_env
from smolvla.envs.video import video_frame
from smolvla.eval.agents import Agent
from smolvla.eval.scoring import EpisodeResult
from smolvla.eval.video import write_rollout_video

# An agent acts step by step inside `run_episode`; a driver (e.g. `eval.remote.RemoteDriver`) has a
# `play(env, seed, max_steps, video_path) -> EpisodeResult` method and runs whole episodes itself.
AgentFactory = Callable[[], Agent]


@dataclass(frozen=True)
class EvalConfig:
    """envs: registry names (e.g. "metaworld/reach-v3"); videos_per_task: first k episodes recorded.

    threads: torch intra-op threads per worker (default: CPU count // workers). On a busy machine more
    threads than free cores make every forward pass many times slower (threads wait on descheduled peers).
    split: the scene distribution of envs that have splits (so101: "id" or "ood"); None: the env's default.
    """

    envs: tuple[str, ...]
    episodes: int = 10
    seed: int = HELD_OUT_SEED
    image_size: int = 64
    max_steps: int | None = None
    workers: int = 1
    video_dir: Path | None = None
    videos_per_task: int = 1
    threads: int | None = None
    split: str | None = None

    def __post_init__(self) -> None:
        if not self.envs:
            raise ValueError("EvalConfig.envs is empty: name at least one environment")
        for name, value in (("episodes", self.episodes), ("workers", self.workers), ("threads", self.threads or 1)):
            if value < 1:
                raise ValueError(f"EvalConfig.{name} must be >= 1, got {value}")


@dataclass(frozen=True)
class _Job:
    env_name: str
    episode: int
    seed: int
    video_path: Path | None


def _jobs(cfg: EvalConfig) -> list[_Job]:
    jobs = []
    for name in cfg.envs:
        for i in range(cfg.episodes):
            video = None
            if cfg.video_dir is not None and i < cfg.videos_per_task:
                video = Path(cfg.video_dir) / f"{name.replace('/', '__')}__ep{i:03d}.mp4"
            jobs.append(_Job(name, i, cfg.seed + i, video))
    return jobs


def run_episode(env: SimEnv, agent: Agent, seed: int, max_steps: int | None, video_path: Path | None) -> EpisodeResult:
    """Play one episode to success, failure or the step limit."""
    limit = env.max_episode_steps if max_steps is None else min(max_steps, env.max_episode_steps)
    t0 = time.monotonic()
    obs = env.reset(seed)
    agent.reset()
    frames = [video_frame(env, obs)] if video_path is not None else None
    info: dict[str, Any] = {"success": False}
    steps = 0
    while steps < limit:
        obs, _, terminated, truncated, info = env.step(agent.act(obs))
        steps += 1
        if frames is not None:
            frames.append(video_frame(env, obs))
        if terminated or truncated:
            break
    video = None
    if frames is not None:
        video = str(write_rollout_video(np.stack(frames), video_path, env.fps))
    return EpisodeResult(
        env_name=env.name,
        seed=seed,
        success=bool(info["success"]),
        steps=steps,
        seconds=time.monotonic() - t0,
        stage_scores=dict(info.get("stage_scores", {})),
        video=video,
    )


# Per-process state of pool workers: the agent and the environments built so far.
_WORKER: dict[str, Any] = {}


def _worker_init(factory: AgentFactory, cfg: EvalConfig, threads: int, parent_pid: int | None = None) -> None:
    import torch

    if parent_pid is not None:
        exit_with_parent(parent_pid)

    torch.set_num_threads(threads)
    _WORKER.update(agent=factory(), envs={}, cfg=cfg)


def _worker_close() -> None:
    """Close the in-process worker's driver connections and environments (pool workers just exit)."""
    close = getattr(_WORKER.get("agent"), "close", None)
    try:
        if close is not None:
            close()
    finally:
        for env in _WORKER.get("envs", {}).values():
            env.close()
        _WORKER.clear()


def _worker_run(job: _Job) -> EpisodeResult:
    cfg: EvalConfig = _WORKER["cfg"]
    envs: dict[str, SimEnv] = _WORKER["envs"]
    if job.env_name not in envs:
        kwargs = {} if cfg.split is None else {"split": cfg.split}
        envs[job.env_name] = make_env(job.env_name, image_size=cfg.image_size, **kwargs)
    agent = _WORKER["agent"]
    play = getattr(agent, "play", None)
    if play is not None:
        result = play(envs[job.env_name], job.seed, cfg.max_steps, job.video_path)
    else:
        result = run_episode(envs[job.env_name], agent, job.seed, cfg.max_steps, job.video_path)
    # Report under the registry name the job asked for (an adapter's own name may be more specific).
    return replace(result, env_name=job.env_name)


def iter_results(cfg: EvalConfig, factory: AgentFactory) -> Iterator[EpisodeResult]:
    """Yield episode results as they finish (order not guaranteed with several workers)."""
    jobs = _jobs(cfg)
    workers = min(cfg.workers, len(jobs))
    threads = cfg.threads or max(1, (os.cpu_count() or 1) // workers)
    if workers == 1:
        _worker_init(factory, cfg, threads)
        try:
            yield from map(_worker_run, jobs)
        finally:
            _worker_close()
        return
    # spawn, not fork: MuJoCo GL contexts and torch thread pools do not survive a fork.
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_worker_init, initargs=(factory, cfg, threads, os.getpid())) as pool:
        yield from pool.imap_unordered(_worker_run, jobs)


def seeds(cfg: EvalConfig) -> list[int]:
    """The seeds every task of `cfg` is played with."""
    return [cfg.seed + i for i in range(cfg.episodes)]


def sort_results(cfg: EvalConfig, results: list[EpisodeResult]) -> list[EpisodeResult]:
    """`results` in (env as listed in `cfg`, seed) order."""
    return sorted(results, key=lambda r: (cfg.envs.index(r.env_name), r.seed))


def evaluate(
    cfg: EvalConfig, factory: AgentFactory, progress: bool = True, finished: list[EpisodeResult] | None = None
) -> list[EpisodeResult]:
    """All episodes of `cfg`, sorted by (env, seed), with a progress bar.

    finished: a list that receives each episode as it ends. If an episode raises, the error propagates and
    this list still holds every episode finished before it, so the caller can write a partial report.
    """
    total = len(cfg.envs) * cfg.episodes
    results = finished if finished is not None else []
    with tqdm(total=total, desc="eval", unit="ep", disable=not progress) as bar:
        for r in iter_results(cfg, factory):
            results.append(r)
            bar.update(1)
            bar.set_postfix(success=f"{sum(x.success for x in results)}/{len(results)}")
    return sort_results(cfg, results)
