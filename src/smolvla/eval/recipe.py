"""The demo policy's recipe: which tasks, how much expert data, which architecture, how long to train.

One source of truth for `scripts/train_demo_policy.sh` (which runs the same steps through the CLI) and for
`smolvla demo --retrain` (which runs them in-process when the committed asset is missing).

The architecture ("demo", ~3.6M parameters) sits between the `tiny` test preset and the ~10M `small`
preset: measured on this 2-core CPU it trains ~2.6x faster than `small` (26 vs 10 samples/s on one busy
core) and predicts a chunk in ~60 ms. Its weights start from an initial checkpoint written by
`write_init_checkpoint`, which `smolvla train --init checkpoint` then trains (the train CLI selects
architectures by preset name only, so a non-preset size travels as a checkpoint).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from smolvla.model.config import ModelConfig, get_config
from smolvla.policy.checkpoint import save_policy
from smolvla.policy.config import PolicyConfig
from smolvla.policy.normalize import NormStats
from smolvla.policy.policy import SmolVLAPolicy
from smolvla.policy.tokenizer import TaskTokenizer, build_byte_tokenizer
from smolvla.types import ACTION, OBS_STATE

logger = logging.getLogger(__name__)

# Meta-World through `smolvla.envs.metaworld`: one 64x64 "corner2" camera, [hand xyz, gripper] state,
# [dx, dy, dz, gripper] actions.
CAMERA_KEY = "observation.images.corner2"
STATE_DIM = 4
ACTION_DIM = 4


def demo_model_config() -> ModelConfig:
    """The demo architecture, the model preset "demo": 64x64 images in 8x8 patches -> 16 visual tokens,
    4-layer decoder of width 192, expert of width 144, chunks of 30 actions, 10 Euler steps, 40 language
    tokens (byte tokenizer: the demo tasks' instructions are at most 34 bytes)."""
    return get_config("demo")


@dataclass(frozen=True)
class DemoRecipe:
    """The numbers of the recipe; `scripts/train_demo_policy.sh` passes the same values to the CLI."""

    tasks: tuple[str, ...] = ("button-press-topdown-v3", "drawer-close-v3")
    episodes_per_task: int = 40
    image_size: int = 64
    seed: int = 0
    train_steps: int = 4000
    batch_size: int = 8
    lr: float = 0.0005
    eval_episodes: int = 10
    eval_max_steps: int = 200

    @property
    def env_names(self) -> tuple[str, ...]:
        return tuple(f"metaworld/{t}" for t in self.tasks)


def write_init_checkpoint(path: str | Path, model: ModelConfig | None = None, seed: int = 0) -> Path:
    """A randomly initialised Meta-World policy of the demo architecture, saved at `path`.

    Its normalisation stats are placeholders (zero mean, unit std): training replaces them with the
    dataset's, as it does for every `--init checkpoint` run.
    """
    model = model or demo_model_config()
    config = PolicyConfig(
        model=model,
        camera_keys=(CAMERA_KEY,),
        state_dim=STATE_DIM,
        action_dim=ACTION_DIM,
        n_action_steps=model.chunk_size,
    )
    stats = NormStats(
        {
            OBS_STATE: {"mean": torch.zeros(STATE_DIM), "std": torch.ones(STATE_DIM)},
            ACTION: {"mean": torch.zeros(ACTION_DIM), "std": torch.ones(ACTION_DIM)},
        }
    )
    tokenizer = TaskTokenizer(build_byte_tokenizer(), model.max_lang_tokens, truncate=config.truncate_task)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        policy = SmolVLAPolicy(config, stats, tokenizer)
    return save_policy(policy, path)


def train_config(recipe: DemoRecipe, dataset: Path, init_dir: Path, out_dir: Path):
    """The TrainConfig of the recipe: what `smolvla train --preset finetune --freeze full --init checkpoint
    --init-path INIT --dataset DS --lr LR --batch-size B --steps N --warmup-steps 1000 --decay-steps 30000`
    builds (the finetune preset's AdamW betas/eps/decay and grad clip; every parameter trains). The schedule
    is pinned to the one the committed demo was trained with (the finetune preset's before its schedule
    followed --steps): 1000 warmup steps, a cosine decay that would end at step 30,000."""
    from dataclasses import replace

    from smolvla.train.config import DatasetSpec, InitConfig, ScheduleConfig, get_train_config

    cfg = get_train_config(
        "finetune",
        freeze="full",
        batch_size=recipe.batch_size,
        steps=recipe.train_steps,
        output_dir=str(out_dir),
        save_every=recipe.train_steps,
        log_every=50,
    )
    return replace(
        cfg,
        init=InitConfig(kind="checkpoint", path=str(init_dir)),
        schedule=ScheduleConfig(warmup_steps=1000, decay_steps=30_000, decay_lr=2.5e-6),
        data=replace(cfg.data, datasets=(DatasetSpec(str(dataset)),)),
        optimizer=replace(cfg.optimizer, lr=recipe.lr),
    )


def make_demo_dataset(recipe: DemoRecipe, root: Path, workers: int = 2, progress: bool = True) -> dict:
    """Scripted-expert episodes of the recipe's tasks, written as a LeRobot dataset at `root`, with progress
    bars on stderr (the first episodes take a while: worker processes start and import the simulator).
    Returns {env name: {"attempts", "successes"}}; raises if an expert fell short."""
    from tqdm import tqdm

    from smolvla.envs.datagen import DatagenConfig, generate, iter_kept_episodes, scratch_dir, write_dataset

    cfg = DatagenConfig(
        env_names=recipe.env_names,
        episodes_per_task=recipe.episodes_per_task,
        image_size=recipe.image_size,
        seed=recipe.seed,
        workers=workers,
    )
    total = recipe.episodes_per_task * len(recipe.tasks)
    with scratch_dir() as scratch:
        desc = f"expert episodes ({len(recipe.tasks)} tasks)"
        with tqdm(total=total, desc=desc, unit="ep", disable=not progress) as bar:
            reports = generate(cfg, Path(scratch), progress=bar.update)
        short = [name for name, r in reports.items() if len(r.kept) < recipe.episodes_per_task]
        if short:
            raise RuntimeError(f"scripted experts fell short of {recipe.episodes_per_task} episodes on {short}")
        with tqdm(total=total, desc="writing dataset", unit="ep", disable=not progress) as bar:
            write_dataset(iter_kept_episodes(reports), root, robot_type="metaworld", progress=bar.update)
    return {name: {"attempts": r.attempts, "successes": r.successes} for name, r in reports.items()}


def train_demo_policy(recipe: DemoRecipe, work_dir: Path, workers: int = 2) -> Path:
    """The whole recipe in-process: expert data -> initial checkpoint -> training. Returns the trained
    policy directory (`<work_dir>/train/checkpoints/<step>/pretrained_model`)."""
    from smolvla.train.checkpointing import PRETRAINED_DIR
    from smolvla.train.loop import main

    work_dir.mkdir(parents=True, exist_ok=True)
    dataset = work_dir / "dataset"
    if (dataset / "meta" / "info.json").exists():
        logger.info("recipe 1/2: expert data already in %s", dataset)
    else:
        logger.info(
            "recipe 1/2: %d scripted-expert episodes of %s into %s (%d worker processes)",
            recipe.episodes_per_task * len(recipe.tasks), ", ".join(recipe.tasks), dataset, workers,
        )  # fmt: skip
        make_demo_dataset(recipe, dataset, workers)
    init_dir = write_init_checkpoint(work_dir / "init", seed=recipe.seed)
    logger.info(
        "recipe 2/2: %d training steps of batch %d into %s", recipe.train_steps, recipe.batch_size, work_dir / "train"
    )
    result = main(train_config(recipe, dataset, init_dir, work_dir / "train"))
    if result.checkpoint is None:
        raise RuntimeError(f"training in {work_dir / 'train'} wrote no checkpoint")
    return Path(result.checkpoint) / PRETRAINED_DIR


def export_asset(checkpoint: Path, train_dir: Path, eval_report: Path, dest: Path, recipe: DemoRecipe) -> Path:
    """Copy a trained policy directory to `dest` (fp32 safetensors, ~14 MB) with `provenance.json`: the
    recipe, the last training-log record, the expert data report and the evaluation summary."""
    import json
    import shutil
    from dataclasses import asdict

    from smolvla.policy.checkpoint import is_policy_dir

    if not is_policy_dir(checkpoint):
        raise FileNotFoundError(f"{checkpoint} is not a policy directory (config.json + stats.safetensors)")
    records = [json.loads(line) for line in (train_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    losses = [r for r in records if "loss" in r]
    report = json.loads(eval_report.read_text())
    provenance = {
        "recipe": asdict(recipe),
        "training": {"first": losses[0], "last": losses[-1]} if losses else {},
        "eval": {k: report[k] for k in ("meta", "overall", "per_task") if k in report},
    }
    datagen = train_dir.parent / "dataset" / "datagen_report.json"
    if datagen.is_file():
        provenance["expert_data"] = json.loads(datagen.read_text())
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(checkpoint, dest)
    if (train_dir / "loss_curve.png").is_file():
        shutil.copy2(train_dir / "loss_curve.png", dest / "loss_curve.png")
    (dest / "provenance.json").write_text(json.dumps(provenance, indent=2))
    return dest
