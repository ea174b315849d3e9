"""The demo: a trained policy acting in simulation through the async engine, with timing and a report.

Meta-World (the committed two-task policy) or the SO-101 suite (pick-place, stacking, sorting: partial
scores per stage, so the report's mean score says how far failed episodes got).

Server and robot client run in this process on 127.0.0.1: the policy behind a `PolicyServer` (one torch
thread, so the simulation keeps the other core), each env wrapped as the engine's `Robot` and driven by a
`RobotClient`. The same held-out seeds can be replayed with the client in sync mode (observe, wait for the
chunk, execute it) to compare episode times.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smolvla.envs.metaworld_tasks import difficulty_of
from smolvla.envs.registry import HELD_OUT_SEED
from smolvla.eval.remote import InProcessServer, RemoteDriver, latency_summary
from smolvla.eval.report import build_report, write_report
from smolvla.eval.runner import EvalConfig, evaluate
from smolvla.eval.scoring import EpisodeResult, summarize

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    """env_names: registry names; episodes per task; max_steps: step limit per episode (None: each env's own);
    image_size: the envs' camera size (the policy's training frames, `eval.camera_size`); fps: the robot
    client's control rate in ticks per second of wall clock (None: the env's own rate, i.e. real time: 80
    for Meta-World, 30 for SO-101); split: the scene distribution of envs that have splits (so101).
    video_scale: upscaling of videos made of the policy's views (Meta-World's 64 px camera -> 256 px); envs
    that render their own crisp video (SO-101, 256 px per camera) are recorded as they render it."""

    env_names: tuple[str, ...]
    out_dir: Path
    episodes: int = 5
    max_steps: int | None = 200
    seed: int = HELD_OUT_SEED
    image_size: int = 64
    fps: float | None = None
    g: float = 0.7
    compare_sync: bool = True
    videos_per_task: int = 1
    video_scale: int = 4
    split: str | None = None

    def __post_init__(self) -> None:
        if not self.env_names:
            raise ValueError("DemoConfig.env_names is empty: name at least one environment")
        if self.episodes < 1 or (self.max_steps is not None and self.max_steps < 1):
            raise ValueError(
                f"DemoConfig needs episodes >= 1 and max_steps >= 1, got {self.episodes} and {self.max_steps}"
            )


@dataclass
class DemoRun:
    """One pass over the demo's episodes in one client mode, with the server's forward-pass times."""

    mode: str
    results: list[EpisodeResult]
    forward_s: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        s = summarize(self.results)
        round_trips = [r.timing["median_round_trip_s"] for r in self.results if r.timing.get("chunks")]
        return {
            "mode": self.mode,
            "episodes": s.episodes,
            "success_rate": s.success_rate,
            "mean_score": s.mean_score,
            "mean_episode_s": s.mean_seconds,
            "mean_steps": s.mean_steps,
            "hold_steps": sum(int(r.timing.get("hold_steps", 0)) for r in self.results),
            "chunks": sum(int(r.timing.get("chunks", 0)) for r in self.results),
            "inference_per_chunk": latency_summary(self.forward_s),
            "round_trip_per_chunk": latency_summary(round_trips),
            "wall_s": self.seconds,
        }


def _play_all(policy: Any, cfg: DemoConfig, mode: str, video_dir: Path | None) -> DemoRun:
    eval_cfg = EvalConfig(
        envs=cfg.env_names,
        episodes=cfg.episodes,
        seed=cfg.seed,
        image_size=cfg.image_size,
        max_steps=cfg.max_steps,
        workers=1,
        video_dir=video_dir,
        videos_per_task=cfg.videos_per_task,
        threads=1,
        split=cfg.split,
    )
    t0 = time.monotonic()
    with InProcessServer(policy) as server:
        factory = lambda: RemoteDriver(server.uri, mode=mode, fps=cfg.fps, g=cfg.g, video_scale=cfg.video_scale)
        results = evaluate(eval_cfg, factory, progress=True)
        forward = list(server.predictor.forward_s)
    return DemoRun(mode, results, forward, time.monotonic() - t0)


def _group_function(env_names: tuple[str, ...]) -> Callable[[str], str] | None:
    """Meta-World's difficulty groups when every env is a Meta-World one; None (no groups) otherwise."""
    if not all(name.startswith("metaworld/") for name in env_names):
        return None
    return lambda name: difficulty_of(name.split("/", 1)[1])


def run_demo(policy: Any, cfg: DemoConfig, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Play the demo episodes (async, then sync if asked), write report.json, success.png and videos into
    `cfg.out_dir`; returns the report (its "engine" entry holds the timing of each mode)."""
    runs = [_play_all(policy, cfg, "async", cfg.out_dir / "videos")]
    if cfg.compare_sync:
        runs.append(_play_all(policy, cfg, "sync", None))
    report = build_report(runs[0].results, _group_function(cfg.env_names), meta)
    report["engine"] = {run.mode: run.summary() for run in runs}
    if cfg.compare_sync:
        report["sync_episodes"] = [r.to_dict() for r in runs[1].results]
    report["meta"].update(
        episodes_per_task=cfg.episodes, first_seed=cfg.seed, max_steps=cfg.max_steps, fps=cfg.fps, g=cfg.g,
        image_size=cfg.image_size, split=cfg.split,
    )  # fmt: skip
    write_report(report, cfg.out_dir)
    return report
