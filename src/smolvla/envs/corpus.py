"""A community-style pretraining corpus made here: many small datasets from differently configured sims.

The paper pretrains on community datasets that disagree on everything but the robot: camera names
("laptop", "phone", "up", "wrist"), frame rates, image sizes, and task strings that are often vague
("Hold", "task 1"). `make_corpus` reproduces that heterogeneity from our scripted experts: each `Variant`
rolls out some tasks (`smolvla.envs.datagen`) and rewrites its episodes before writing them -

    cameras      env camera -> the name this "contributor" gave it (null: that camera was not recorded)
    frame_stride keep every k-th frame: fps / k (only for absolute joint-target actions, where a sub-sampled
                 target is still a target; Meta-World's actions are deltas, so it keeps stride 1)
    vague        record the task as "Hold" / "task 1" ... instead of the instruction

- and writes, next to the datasets, the relabel rules that restore the instructions from the known scene
(applied with `smolvla relabel DIR --rules FILE`, the paper's annotation step) and `mix.json`, the mixture
file mapping every camera name to a standard view (`smolvla train --mixture`). Time per variant is
measured and reported (`corpus_report.json`).

    python -m smolvla.envs.corpus OUT [--episodes 5] [--workers 2]    (scripts/make_community_corpus.sh)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from smolvla.envs.datagen import DatagenConfig, generate, iter_kept_episodes, scratch_dir, write_dataset
from smolvla.envs.registry import list_envs
from smolvla.envs.rollout import Episode
from smolvla.types import OBS_IMAGES_PREFIX

logger = logging.getLogger(__name__)

RULES_DIR = "relabel_rules"
# Scenes of the corpus: far from the fine-tuning data (datagen's seeds from 0) and from the held-out
# evaluation seeds (from `HELD_OUT_SEED` = 1000), so pretraining never sees an evaluation scene.
CORPUS_SEED = 100_000


@dataclass(frozen=True)
class Variant:
    """One contributor's dataset: which sim tasks, and how that contributor recorded them.

    views: recorded camera name -> standard view ("image1" top, "image2" wrist, "image3" side) for mix.json.
    """

    name: str
    tasks: tuple[str, ...]
    cameras: dict[str, str | None]
    views: dict[str, str]
    image_size: int = 64
    frame_stride: int = 1
    vague: bool = False
    weight: float = 1.0
    robot_type: str = "so101"

    def __post_init__(self) -> None:
        recorded = {new for new in self.cameras.values() if new is not None}
        if set(self.views) != recorded:
            raise ValueError(
                f"variant {self.name}: views {sorted(self.views)} must name the recorded cameras {sorted(recorded)}"
            )
        if self.frame_stride < 1:
            raise ValueError(f"variant {self.name}: frame_stride must be >= 1, got {self.frame_stride}")


# The default corpus. SO-101 variants name the arm's cameras as community datasets do; Meta-World adds other
# robots and tasks. Variants whose sim tasks are not registered (e.g. the SO-101 suite's stacking/sorting
# before it exists) are skipped and reported.
DEFAULT_VARIANTS = (
    Variant("so101_laptop_phone", ("so101/pick-place", "so101/stacking", "so101/sorting"),
            {"top": "laptop", "wrist": "phone"}, {"laptop": "image1", "phone": "image2"}, image_size=128),
    Variant("so101_up_wrist_15fps", ("so101/pick-place", "so101/stacking"),
            {"top": "up", "wrist": "wrist"}, {"up": "image1", "wrist": "image2"}, image_size=160, frame_stride=2,
            vague=True),
    Variant("so101_sorting_up_only", ("so101/sorting",), {"top": "up", "wrist": None}, {"up": "image1"},
            image_size=112, vague=True),
    Variant("metaworld_up", ("metaworld/reach-v3", "metaworld/push-v3", "metaworld/drawer-open-v3"),
            {"corner2": "up"}, {"up": "image1"}, image_size=64, robot_type="sawyer"),
    Variant("metaworld_cam_high_vague", ("metaworld/pick-place-v3", "metaworld/button-press-topdown-v3"),
            {"corner2": "cam_high"}, {"cam_high": "image1"}, image_size=80, vague=True, robot_type="sawyer"),
)  # fmt: skip


def vague_names(tasks: list[str]) -> dict[str, str]:
    """Instruction -> the vague string a contributor recorded: "Hold" for a one-task dataset, else "task i"."""
    if len(tasks) == 1:
        return {tasks[0]: "Hold"}
    return {t: f"task {i + 1}" for i, t in enumerate(tasks)}


def rewrite_episode(ep: Episode, variant: Variant, task: str) -> Episode:
    """`ep` as the variant's contributor recorded it: renamed/dropped cameras, every k-th frame, `task`."""
    frames = {}
    for key, arr in ep.frames.items():
        if key.startswith(OBS_IMAGES_PREFIX):
            cam = key.removeprefix(OBS_IMAGES_PREFIX)
            if cam not in variant.cameras:
                raise ValueError(f"variant {variant.name}: env camera {cam!r} is not in its cameras {variant.cameras}")
            if variant.cameras[cam] is None:
                continue
            key = OBS_IMAGES_PREFIX + variant.cameras[cam]
        frames[key] = arr[:: variant.frame_stride]
    k = variant.frame_stride
    if ep.fps % k:
        raise ValueError(f"variant {variant.name}: fps {ep.fps} is not divisible by frame_stride {k}")
    return dataclasses.replace(ep, task=task, fps=ep.fps // k, frames=frames, rewards=ep.rewards[::k])


def _recorded(episodes: Iterable[Episode], variant: Variant, rules: dict[str, str]) -> Iterator[Episode]:
    for ep in episodes:
        yield rewrite_episode(ep, variant, next((v for v, t in rules.items() if t == ep.task), ep.task))


@dataclass
class VariantReport:
    name: str
    skipped: str | None = None
    episodes: int = 0
    fps: int | None = None
    seconds: float = 0.0
    tasks: list[str] = field(default_factory=list)


def make_variant(variant: Variant, out: Path, episodes: int, workers: int, seed: int) -> VariantReport:
    """Generate and write one variant's dataset (and its relabel rules if vague)."""
    known = set(list_envs())
    missing = [t for t in variant.tasks if t not in known]
    if missing:
        return VariantReport(variant.name, skipped=f"tasks not registered: {missing}")
    start = time.monotonic()
    cfg = DatagenConfig(
        env_names=variant.tasks, episodes_per_task=episodes, image_size=variant.image_size, seed=seed, workers=workers
    )
    with scratch_dir() as scratch:
        reports = generate(cfg, Path(scratch))
        first = next(iter_kept_episodes(reports), None)
        if first is None:
            return VariantReport(variant.name, skipped="the experts kept no episode")
        cams = sorted(k.removeprefix(OBS_IMAGES_PREFIX) for k in first.frames if k.startswith(OBS_IMAGES_PREFIX))
        if cams != sorted(variant.cameras):
            return VariantReport(variant.name, skipped=f"env cameras {cams}, variant expects {sorted(variant.cameras)}")
        tasks = [r.task for r in reports.values() if r.kept]
        rules = {vague: task for task, vague in vague_names(tasks).items()} if variant.vague else {}
        kept = iter_kept_episodes(reports)
        n = write_dataset(_recorded(kept, variant, rules), out / variant.name, robot_type=variant.robot_type)
    if rules:
        (out / RULES_DIR).mkdir(exist_ok=True)
        (out / RULES_DIR / f"{variant.name}.json").write_text(json.dumps(rules, indent=2) + "\n")
    fps = json.loads((out / variant.name / "meta" / "info.json").read_text())["fps"]
    return VariantReport(variant.name, None, n, fps, round(time.monotonic() - start, 1), tasks)


def mixture_file(variants: Iterable[Variant], names: set[str]) -> dict:
    """mix.json content for the written variants (roots relative to the corpus folder)."""
    return {
        "datasets": [
            {"root": v.name, "weight": v.weight, "cameras": dict(v.views)} for v in variants if v.name in names
        ]
    }


def make_corpus(
    out: Path,
    variants: Iterable[Variant] = DEFAULT_VARIANTS,
    episodes: int = 5,
    workers: int = 1,
    seed: int = CORPUS_SEED,
) -> list[VariantReport]:
    """Write every variant under `out`, then mix.json and corpus_report.json. Returns the per-variant reports."""
    out.mkdir(parents=True, exist_ok=True)
    variants = list(variants)
    reports = []
    for i, variant in enumerate(variants):
        rep = make_variant(variant, out, episodes, workers, seed + 10_000 * i)  # other scenes per contributor
        logger.info("corpus %s: %s", variant.name, rep.skipped or f"{rep.episodes} episodes in {rep.seconds} s")
        reports.append(rep)
    written = {r.name for r in reports if r.skipped is None}
    if not written:
        raise ValueError(f"no corpus dataset could be made: {[(r.name, r.skipped) for r in reports]}")
    (out / "mix.json").write_text(json.dumps(mixture_file(variants, written), indent=2) + "\n")
    summary = {
        "episodes_per_task": episodes,
        "seconds": round(sum(r.seconds for r in reports), 1),
        "variants": [dataclasses.asdict(r) for r in reports],
    }
    (out / "corpus_report.json").write_text(json.dumps(summary, indent=2) + "\n")
    return reports


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Write a community-style corpus of small heterogeneous datasets.")
    p.add_argument("out", type=Path, help="corpus folder (one sub-folder per dataset, mix.json, relabel rules)")
    p.add_argument("--episodes", type=int, default=5, help="successful episodes per task per variant")
    p.add_argument("--workers", type=int, default=1, help="rollout processes")
    p.add_argument("--seed", type=int, default=CORPUS_SEED, help="first seed (far from datagen's and eval's)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    make_corpus(args.out, episodes=args.episodes, workers=args.workers, seed=args.seed)


if __name__ == "__main__":
    main()
