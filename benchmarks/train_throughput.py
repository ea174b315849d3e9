"""Training throughput (samples/s) of a preset on a synthetic LeRobot v3.0 dataset; prints JSON.

    python benchmarks/train_throughput.py                          # tiny_cpu preset on CPU
    python benchmarks/train_throughput.py --model-preset smolvla_base --device cuda --bf16 --batch-size 32

Measures full optimiser steps (data loading and video decoding included) after `--warmup` untimed steps.
The dataset (2 cameras, state/action dim 6) is written to a temporary directory with the data writer.
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
from smolvla.train.config import DataConfig, DatasetSpec, InitConfig, get_train_config
from smolvla.train.loop import init_train_state, train_step
from smolvla.train.runtime import make_runtime


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
        writer.add_episode(frames, task="pick")
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
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        ds = write_dataset(Path(tmp) / "ds", args.image_size, episodes=4, length=60)
        overrides = {
            "steps": args.warmup + args.steps,
            "batch_size": args.batch_size,
            "output_dir": str(Path(tmp) / "run"),
            "device": args.device,
            "mixed_precision": "bf16" if args.bf16 else "no",
            "data": DataConfig(datasets=(DatasetSpec(str(ds)),), num_workers=args.num_workers),
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
        t0 = time.perf_counter()
        for _ in range(args.steps):
            m = train_step(state, next(batches), cfg)
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
            "timed_steps": args.steps,
            "step_time_s": elapsed / args.steps,
            "samples_per_s": args.steps * args.batch_size / elapsed,
            "params": sum(p.numel() for p in policy.model.parameters()),
            "trainable_params": sum(p.numel() for p in state.params),
            "last_loss": last_loss,
            "peak_gpu_mem_gb": torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_available() else None,
        }


def main(argv: list[str] | None = None) -> None:
    print(json.dumps(run(parse_args(argv)), indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
