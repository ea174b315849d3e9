"""Can a model preset's vision tower find the cube? Regress the cube's position from the top camera; JSON.

    python benchmarks/so101_localization_probe.py --train-scenes 450 4000 --steps 1000 \\
        --out docs/measurements/so101_suite/localization_probe.json

A pick fails when the policy misjudges where the cube is (`so101_grasp_error.py`). This isolates that part:
the preset's vision tower and connector (pixel shuffle to its visual tokens, projection to the decoder
width), followed by a two-layer head on the flattened tokens, are trained from scratch to regress the cube's
table position (m) from one top-camera frame of a freshly reset pick-place scene, with no action, language or
state. Held-out scenes (seeds from `HELD_OUT_SEED`, never a training scene) give the median error in mm.
Varying the number of distinct training scenes (a dataset of N episodes shows N cube positions) and the
connector's `--scale-factor` (visual tokens per view) says which limits localisation: data or tokens.
`--save-weights DIR` keeps each probe's vision tower and connector (safetensors, the policy's parameter
names `vision.*`, `connector.*`) to start a policy from a tower that localises:
`--swap-into POLICY_DIR --weights FILE --swap-out NEW_DIR` copies a policy checkpoint with those tensors
replaced (then `smolvla train --init checkpoint --init-path NEW_DIR --freeze vision_frozen ...`).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from smolvla.envs.registry import make_env
from smolvla.model.config import ConnectorConfig, get_config
from smolvla.model.connector import Connector
from smolvla.model.siglip import VisionTower

HELD_OUT_SEED = 500_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="so101", help="model preset whose vision tower and connector are probed")
    p.add_argument(
        "--scale-factor", type=int, nargs="+", default=[None], help="connector pixel shuffle (default: the preset's)"
    )
    p.add_argument("--train-scenes", type=int, nargs="+", default=[450])
    p.add_argument("--test-scenes", type=int, default=300)
    p.add_argument("--steps", type=int, default=1000, help="optimiser steps per probe")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--split", choices=("id", "ood"), default="id")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="JSON report, rewritten after each probe")
    p.add_argument("--save-weights", type=Path, default=None, help="folder for each probe's vision + connector")
    p.add_argument("--swap-into", type=Path, default=None, help="instead of probing: policy checkpoint to copy")
    p.add_argument("--weights", type=Path, default=None, help="with --swap-into: a probe's saved weights")
    p.add_argument("--swap-out", type=Path, default=None, help="with --swap-into: the new checkpoint folder")
    return p.parse_args(argv)


def render_scenes(seeds: range, image_size: int, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (uint8[N, 3, S, S] top frames, float32[N, 2] cube x, y in m) of freshly reset pick-place scenes."""
    env = make_env("so101/pick-place", image_size=image_size, split=split)
    frames, xy = [], []
    for seed in seeds:
        obs = env.reset(seed=seed)
        frames.append(np.asarray(obs["observation.images.top"]).transpose(2, 0, 1))
        xy.append(env.cube_pos(0)[:2])
    env.close()
    return torch.from_numpy(np.stack(frames)), torch.tensor(np.array(xy), dtype=torch.float32)


class Probe(nn.Module):
    """Vision tower -> connector tokens float[B, T, D] -> flattened -> MLP -> float[B, 2] (normalised x, y)."""

    def __init__(self, preset: str, scale_factor: int | None):
        super().__init__()
        cfg = get_config(preset)
        if scale_factor is not None:
            cfg = replace(cfg, connector=ConnectorConfig(scale_factor=scale_factor))
        self.tokens = cfg.tokens_per_image
        self.vision = VisionTower(cfg.vision)
        self.connector = Connector(cfg)
        self.head = nn.Sequential(nn.Linear(self.tokens * cfg.decoder.hidden, 256), nn.GELU(), nn.Linear(256, 2))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8[B, 3, S, S] -> float[B, 2]."""
        x = images.float() / 127.5 - 1.0
        return self.head(self.connector(self.vision(x)).flatten(1))


def run_probe(args, scale: int | None, n_train: int, data, test) -> dict:
    torch.manual_seed(0)
    (frames, xy), (test_frames, test_xy) = data, test
    frames, xy = frames[:n_train], xy[:n_train]
    mean, std = xy.mean(0), xy.std(0)
    model = Probe(args.preset, scale)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    gen = torch.Generator().manual_seed(0)
    start = time.monotonic()
    for _ in range(args.steps):
        idx = torch.randint(0, n_train, (args.batch_size,), generator=gen)
        loss = nn.functional.mse_loss(model(frames[idx]), (xy[idx] - mean) / std)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(test_frames[i : i + 64]) for i in range(0, len(test_frames), 64)]) * std + mean
        train_pred = torch.cat([model(frames[i : i + 64]) for i in range(0, min(n_train, 300), 64)]) * std + mean
    if args.save_weights is not None:
        from safetensors.torch import save_file

        args.save_weights.mkdir(parents=True, exist_ok=True)
        tensors = {
            name: p.detach().contiguous()
            for name, p in model.state_dict().items()
            if name.startswith(("vision.", "connector."))
        }
        save_file(tensors, args.save_weights / f"probe_s{scale}_n{n_train}.safetensors")
    err = (pred - test_xy).norm(dim=1) * 1000.0
    train_err = (train_pred - xy[: len(train_pred)]).norm(dim=1) * 1000.0
    baseline = (test_xy - mean).norm(dim=1) * 1000.0  # always answering the training mean
    return {
        "scale_factor": scale,
        "visual_tokens": model.tokens,
        "train_scenes": n_train,
        "steps": args.steps,
        "test_median_error_mm": round(float(err.median()), 1),
        "test_within_10mm": round(float((err <= 10).float().mean()), 3),
        "train_median_error_mm": round(float(train_err.median()), 1),
        "mean_guess_median_error_mm": round(float(baseline.median()), 1),
        "seconds": round(time.monotonic() - start, 1),
    }


def swap_into_checkpoint(policy_dir: Path, weights: Path, out_dir: Path) -> int:
    """Copy `policy_dir` to `out_dir` with the tensors of `weights` replacing the model's; -> tensors replaced.
    Every replaced tensor must exist in the model with the same shape (same preset)."""
    import shutil

    from safetensors.torch import load_file, save_file

    from smolvla.policy.atomic_dir import atomic_dir

    if out_dir.exists():
        raise FileExistsError(f"{out_dir} exists; choose a new --swap-out folder")
    model = load_file(policy_dir / "model.safetensors")
    new = load_file(weights)
    for name, tensor in new.items():
        if name not in model or model[name].shape != tensor.shape:
            got = None if name not in model else list(model[name].shape)
            raise ValueError(
                f"{weights}: {name} {list(tensor.shape)} has no counterpart in {policy_dir} (found {got}); "
                "the probe and the policy must share a preset"
            )
    with atomic_dir(out_dir) as staging:  # a crash leaves no half-written checkpoint behind
        shutil.copytree(policy_dir, staging, dirs_exist_ok=True)
        save_file(model | new, staging / "model.safetensors")
    return len(new)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.swap_into is not None:
        if args.weights is None or args.swap_out is None:
            raise SystemExit("--swap-into needs --weights FILE and --swap-out NEW_DIR")
        n = swap_into_checkpoint(args.swap_into, args.weights, args.swap_out)
        print(json.dumps({"checkpoint": str(args.swap_out), "tensors_replaced": n}))
        return
    torch.set_num_threads(args.threads)
    size = get_config(args.preset).vision.image_size
    data = render_scenes(range(max(args.train_scenes)), size, args.split)
    test = render_scenes(range(HELD_OUT_SEED, HELD_OUT_SEED + args.test_scenes), size, args.split)
    results: list[dict] = []
    for scale in args.scale_factor:
        for n in args.train_scenes:
            results.append(run_probe(args, scale, n, data, test))
            print(json.dumps(results[-1]), flush=True)
            write_report(args, size, results)
    print(json.dumps(write_report(args, size, results), indent=2))


def write_report(args: argparse.Namespace, size: int, results: list[dict]) -> dict:
    report = {
        "benchmark": "so101_localization_probe",
        "preset": args.preset,
        "image_size": size,
        "split": args.split,
        "test_scenes": args.test_scenes,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "threads": args.threads,
        "machine": platform.processor() or platform.machine(),
        "results": results,
    }
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
