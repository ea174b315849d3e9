"""Scripted-expert demonstrations: roll out each task's expert, keep the successful episodes.

Work is split into chunks of consecutive seeds per task, handed out in seed order while the successes so
far plus the seeds still running fall short of `episodes_per_task`. The attempted seeds of a task are thus
always a prefix 0..M of its seed sequence reaching past its N-th success, and the kept episodes (the first
N successes in seed order) do not depend on the number of worker processes or their timing. A task whose
expert keeps failing stops after `max_attempts_per_task` rollouts and is reported as short (never padded).

Workers are separate processes (each renders with its own GL context) that save episodes as .npz files
into a scratch folder; the parent writes the dataset from them.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from smolvla.envs.episode_io import load_episode, save_episode
from smolvla.envs.orphans import exit_with_parent
from smolvla.envs.registry import make_env
from smolvla.envs.rollout import Episode, expert_episode
from smolvla.envs.so101_suite.arm import JOINT_NAMES as SO101_JOINTS
from smolvla.types import ACTION, OBS_IMAGES_PREFIX, OBS_STATE

REWARD_KEY = "next.reward"
# Episodes per dataset commit in write_dataset: each touched file is rewritten once per batch (instead of once
# per episode); larger batches copy less but hold more episodes in memory (~1 MB each at 64x64, 80 steps).
WRITE_BATCH_EPISODES = 32

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatagenConfig:
    """env_names: registry names, e.g. resolve_tasks("metaworld", "mt10"). seed: first seed of every task.
    split: the scene distribution of envs that have splits (so101: "id" or "ood"); None for the others."""

    env_names: tuple[str, ...]
    episodes_per_task: int
    image_size: int = 64
    seed: int = 0
    workers: int = 1
    chunk_size: int = 5
    max_attempts_per_task: int | None = None  # default: 4 x episodes_per_task
    max_steps: int | None = None  # per episode; default the env's own limit
    split: str | None = None
    expert_noise: float = 0.0  # m, off-target first approaches the expert corrects (so101); 0: none

    def __post_init__(self) -> None:
        if not self.env_names:
            raise ValueError("env_names is empty; expected at least one environment name")
        if len(set(self.env_names)) != len(self.env_names):
            raise ValueError(f"env_names has duplicates: {list(self.env_names)}")
        for name, value in (("episodes_per_task", self.episodes_per_task), ("workers", self.workers)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.chunk_size < 1 or self.seed < 0 or self.image_size < 1:
            raise ValueError(
                f"chunk_size, image_size must be >= 1 and seed >= 0, got {self.chunk_size}, "
                f"{self.image_size}, {self.seed}"
            )
        if not self.expert_noise >= 0.0:
            raise ValueError(f"expert_noise must be >= 0 m, got {self.expert_noise}")
        if self.attempt_limit < self.episodes_per_task:
            raise ValueError(
                f"max_attempts_per_task ({self.attempt_limit}) < episodes_per_task ({self.episodes_per_task})"
            )

    @property
    def attempt_limit(self) -> int:
        return self.max_attempts_per_task or 4 * self.episodes_per_task


@dataclass
class TaskReport:
    """Per task: rollouts tried, expert successes among them, and the kept episode files in seed order.

    found / next_seed / running are scheduling bookkeeping: successful seed -> file, seeds handed out so
    far (offset from the config's first seed), seeds whose rollouts are still running.
    """

    env_name: str
    task: str = ""
    attempts: int = 0
    successes: int = 0
    kept: list[Path] = field(default_factory=list)
    found: dict[int, Path] = field(default_factory=dict)
    next_seed: int = 0
    running: int = 0

    @property
    def success_rate(self) -> float:
        return self.successes / self.attempts if self.attempts else 0.0


def run_chunk(
    env_name: str,
    seeds: list[int],
    image_size: int,
    max_steps: int | None,
    scratch: str,
    split: str | None = None,
    expert_noise: float = 0.0,
) -> dict:
    """Worker: expert rollouts for `seeds`; successful ones saved to scratch. Returns seed -> file or None."""
    out: dict[int, str | None] = {}
    kwargs = {} if split is None else {"split": split}
    with make_env(env_name, image_size=image_size, **kwargs) as env:
        task = env.task
        for seed in seeds:
            episode = expert_episode(env, seed=seed, max_steps=max_steps, expert_noise=expert_noise)
            if episode.success:
                path = Path(scratch) / f"{env_name.replace('/', '__')}__{seed:07d}.npz"
                save_episode(episode, path)
                out[seed] = str(path)
            else:
                out[seed] = None
    return {"env_name": env_name, "task": task, "results": out}


def _next_seeds(cfg: DatagenConfig, rep: TaskReport) -> list[int]:
    """Seeds of this task's next chunk, or [] when it has enough successes or ran out of attempts."""
    missing = cfg.episodes_per_task - len(rep.found) - rep.running
    if missing <= 0:
        return []
    first = cfg.seed + rep.next_seed
    stop = cfg.seed + cfg.attempt_limit
    seeds = list(range(first, min(first + min(cfg.chunk_size, missing), stop)))
    rep.next_seed += len(seeds)
    rep.running += len(seeds)
    return seeds


def _absorb(cfg: DatagenConfig, rep: TaskReport, result: dict) -> int:
    rep.task = result["task"]
    rep.running -= len(result["results"])
    new = 0
    for seed, path in result["results"].items():
        rep.attempts += 1
        if path is not None:
            rep.successes += 1
            if len(rep.found) < cfg.episodes_per_task:
                new += 1
            rep.found[int(seed)] = Path(path)
    return new


def generate(cfg: DatagenConfig, scratch: Path, progress: Callable[[int], None] | None = None) -> dict[str, TaskReport]:
    """Run the experts; returns env name -> report whose `kept` lists episode files (first N successes)."""
    reports = {name: TaskReport(name) for name in cfg.env_names}
    ctx = multiprocessing.get_context("spawn")  # fresh processes: no GL context or torch state inherited
    pool: cf.Executor = (
        cf.ProcessPoolExecutor(cfg.workers, mp_context=ctx, initializer=exit_with_parent, initargs=(os.getpid(),))
        if cfg.workers > 1
        else _InlineExecutor()
    )
    with pool:
        pending: set[cf.Future] = set()

        def submit_ready() -> None:
            for rep in reports.values():
                while seeds := _next_seeds(cfg, rep):
                    args = (
                        rep.env_name,
                        seeds,
                        cfg.image_size,
                        cfg.max_steps,
                        str(scratch),
                        cfg.split,
                        cfg.expert_noise,
                    )
                    pending.add(pool.submit(run_chunk, *args))

        submit_ready()
        while pending:
            done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                pending.discard(fut)
                result = fut.result()
                new = _absorb(cfg, reports[result["env_name"]], result)
                if progress is not None and new:
                    progress(new)
            submit_ready()
    for rep in reports.values():
        rep.kept = [rep.found[s] for s in sorted(rep.found)[: cfg.episodes_per_task]]
        if len(rep.kept) < cfg.episodes_per_task:
            logger.warning(
                "%s: only %d/%d successful expert episodes in %d attempts",
                rep.env_name,
                len(rep.kept),
                cfg.episodes_per_task,
                rep.attempts,
            )
    return reports


def iter_kept_episodes(reports: dict[str, TaskReport]) -> Iterator[Episode]:
    """The kept episodes, task by task in config order, each in seed order."""
    for rep in reports.values():
        for path in rep.kept:
            yield load_episode(path)


def episode_features(episode: Episode) -> dict[str, dict]:
    """Dataset feature specs for an episode's arrays (cameras as video) plus its per-step reward.

    SO-101 state and action carry LeRobot's joint names ("shoulder_pan.pos", ...), as a real arm's recording
    (`smolvla record`) does: the two mean the same thing.
    """
    joint_names = None
    if episode.env_name.startswith("so101/"):
        joint_names = [f"{j}.pos" for j in SO101_JOINTS]
    feats: dict[str, dict] = {}
    for key, arr in episode.frames.items():
        if key.startswith(OBS_IMAGES_PREFIX):
            feats[key] = {"dtype": "video", "shape": list(arr.shape[1:])}
        else:
            names = joint_names if key in (OBS_STATE, ACTION) else None
            feats[key] = {"dtype": str(arr.dtype), "shape": list(arr.shape[1:]), "names": names}
    feats[REWARD_KEY] = {"dtype": "float32", "shape": [1], "names": None}
    return feats


def write_dataset(
    episodes: Iterable[Episode],
    root: Path,
    robot_type: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write episodes into a new LeRobot v3.0 dataset at `root` (one task string per episode's task).

    All episodes must share fps and array layout (the writer checks shapes). Episodes are committed in
    batches of `WRITE_BATCH_EPISODES` (each dataset file is rewritten once per batch, and at most one batch
    is held in memory while `episodes` is consumed lazily); `progress(n)` is called after each committed batch
    of n episodes. Returns the episode count. On an error the batches committed before it stay saved.
    """
    from smolvla.data.writer import DatasetWriter  # torch-importing; only the parent process writes

    writer = None
    count = 0
    batch: list[tuple[dict, str]] = []

    def commit() -> None:
        nonlocal count
        if batch:
            writer.add_episodes(batch)
            count += len(batch)
            if progress is not None:
                progress(len(batch))
            batch.clear()

    try:
        for episode in episodes:
            if writer is None:
                writer = DatasetWriter.create(
                    root, fps=episode.fps, features=episode_features(episode), robot_type=robot_type
                )
            elif episode.fps != writer.info["fps"]:
                commit()  # keep what came before the mismatch, as when episodes were saved one at a time
                raise ValueError(
                    f"episode {count} ({episode.env_name}, seed {episode.seed}) has fps {episode.fps}, "
                    f"dataset has {writer.info['fps']}"
                )
            batch.append(({**episode.frames, REWARD_KEY: episode.rewards}, episode.task))
            if len(batch) == WRITE_BATCH_EPISODES:
                commit()
        if writer is None:
            raise ValueError(f"no episodes to write to {root}")
        commit()
    finally:
        if writer is not None:  # frees the dataset lock now, not when a kept traceback lets go of the writer
            writer.close()
    return count


def scratch_dir(parent: Path | None = None) -> tempfile.TemporaryDirectory:
    """A temporary folder for worker episode files (removed when the returned object is cleaned up)."""
    return tempfile.TemporaryDirectory(prefix="smolvla-datagen-", dir=parent)


class _InlineExecutor(cf.Executor):
    """Runs submitted calls immediately in this process (workers=1: no process start-up, easy to debug)."""

    def submit(self, fn, /, *args, **kwargs) -> cf.Future:
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as e:
            fut.set_exception(e)
        return fut
