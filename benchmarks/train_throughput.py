"""Training throughput (samples/s) of a preset on a synthetic LeRobot v3.0 dataset; prints JSON.

    python benchmarks/train_throughput.py                          # tiny_cpu preset on CPU
    python benchmarks/train_throughput.py --model-preset smolvla_base --device cuda --bf16 --batch-size 32
    python benchmarks/train_throughput.py --pad-tasks budget --cache-mb 0     # the data path before the speed-ups
    python benchmarks/train_throughput.py --augment                            # + shift 4 px and colour jitter 0.2

Measures full optimiser steps (data loading and video decoding included) after `--warmup` untimed steps.
The dataset (2 cameras, state/action dim 6, `--episodes` x `--length` frames, episodes with tasks of
different lengths) is written to a temporary directory with the data writer. With the frame cache on, items
are decoded once: the timed steps after a warmup of one epoch read from memory (`warmup_epochs` in the JSON).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from smolvla.data.writer import DatasetWriter
from smolvla.train.config import AugmentConfig, DataConfig, DatasetSpec, InitConfig, get_train_config
from smolvla.train.loop import init_train_state, train_step
from smolvla.train.runtime import make_runtime

TASKS = ("pick up the cube", "put the red cube in the bin on the left", "stack the blue cube on the green one")


def write_dataset(root: Path, image_size: int, episodes: int, length: int) -> Path:
    cams = ("observation.images.top", "observation.images.wrist")
    feats = {c: {"dtype": "video", "shape": [image_size, image_size, 3]} for c in cams}
    feats |= {"observation.state": {"dtype": "float32", "shape": [6]}, "action": {"dtype": "float32", "shape": [6]}}
    writer = DatasetWriter.create(root, fps=30, features=feats)
    rng = np.random.default_rng(0)
    for _ in range(episodes):
        frames = {c: rng.integers(0, 255, (length, image_size, image_size, 3), dtype=np.uint8) for c in cams}
        frames["observation.state"] = rng.normal(size=(length, 6)).astype(np.float32)
        frames["action"] = rng.normal(size=(length, 6)).astype(np.float32)
        writer.add_episode(frames, task=TASKS[_ % len(TASKS)])
    return root


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny_cpu", help="training preset (default tiny_cpu)")
    p.add_argument("--model-preset", default="tiny", help="architecture preset: tiny | small | smolvla_base")
    p.add_argument("--freeze", default=None, help="override the preset's freeze mode")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=30, help="timed steps")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA only)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the preset's)")
    p.add_argument("--image-size", type=int, default=64, help="camera frame size in the synthetic dataset")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--episodes", type=int, default=4, help="episodes in the synthetic dataset")
    p.add_argument("--length", type=int, default=60, help="frames per episode")
    p.add_argument("--pad-tasks", default="longest", choices=("longest", "budget"), help="task token padding")
    p.add_argument("--cache-mb", type=int, default=1024, help="decoded-frame cache (0: decode every visit)")
    p.add_argument("--augment", action="store_true", help="random shift 4 px + colour jitter 0.2")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        ds = write_dataset(Path(tmp) / "ds", args.image_size, episodes=args.episodes, length=args.length)
        augment = AugmentConfig(shift=4, brightness=0.2, contrast=0.2, saturation=0.2) if args.augment else None
        overrides = {
            "steps": args.warmup + args.steps,
            "batch_size": args.batch_size,
            "output_dir": str(Path(tmp) / "run"),
            "device": args.device,
            "mixed_precision": "bf16" if args.bf16 else "no",
            "data": DataConfig(
                datasets=(DatasetSpec(str(ds)),),
                num_workers=args.num_workers,
                cache_mb=args.cache_mb,
                pad_tasks=args.pad_tasks,
                augment=augment or AugmentConfig(),
            ),
            "init": InitConfig(kind="scratch", model_preset=args.model_preset),
        }
        if args.freeze:
            overrides["freeze"] = args.freeze
        if args.threads:
            overrides["num_threads"] = args.threads
        cfg = get_train_config(args.preset, **overrides)
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        state = init_train_state(cfg, make_runtime(cfg))
        batches = iter(state.loader)
        for _ in range(args.warmup):
            train_step(state, next(batches), cfg)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0, data_s = time.perf_counter(), 0.0
        for _ in range(args.steps):
            t_data = time.perf_counter()
            batch = next(batches)
            data_s += time.perf_counter() - t_data
            m = train_step(state, batch, cfg)
        last_loss = float(m["loss"])  # syncs the device
        elapsed = time.perf_counter() - t0
        policy = state.policy
        return {
            "benchmark": "train_throughput",
            "preset": args.preset,
            "model_preset": args.model_preset,
            "freeze": cfg.freeze,
            "device": str(state.runtime.device),
            "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor(),
            "torch_threads": torch.get_num_threads(),
            "mixed_precision": cfg.mixed_precision,
            "batch_size": args.batch_size,
            "cameras": len(policy.config.camera_keys),
            "image_size_in_dataset": args.image_size,
            "model_image_size": policy.config.image_size,
            "dataset_frames": args.episodes * args.length,
            "warmup_epochs": args.warmup * args.batch_size / (args.episodes * args.length),
            "pad_tasks": args.pad_tasks,
            "cache_mb": args.cache_mb,
            "augment": args.augment,
            "timed_steps": args.steps,
            "step_time_s": elapsed / args.steps,
            "samples_per_s": args.steps * args.batch_size / elapsed,
            "data_time_per_step_s": data_s / args.steps,  # batch loading (decode, cache, collate, tokenise)
            "params": sum(p.numel() for p in policy.model.parameters()),
            "trainable_params": sum(p.numel() for p in state.params),
            "last_loss": last_loss,
            "peak_gpu_mem_gb": torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_available() else None,
        }


def main(argv: list[str] | None = None) -> None:
    print(json.dumps(run(parse_args(argv)), indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
