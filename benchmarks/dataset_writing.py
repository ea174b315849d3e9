"""Dataset writing speed: one `add_episode` call per episode vs `add_episodes` batches, printed as JSON.

Writes N synthetic Meta-World-like episodes (one camera of SIZE x SIZE RGB frames as AV1 video, 39-dim state,
4-dim action, a reward) into a fresh dataset in a temp dir, once per mode, and reports for each the total
seconds, episodes/s overall and over the last fifth of the episodes (a per-episode rewrite of the growing
files shows there as a slowdown), and the size of the written files. Frames are a textured scene drifting
with noise, so the AV1 bitrate is of the order of rendered 64x64 frames (~0.5 KB per frame); they are made
before the clock starts. The machine is shared, so figures vary from run to run; the JSON records the CPU count.

    python benchmarks/dataset_writing.py --episodes 300 --frames 80 --size 64 --batch 32
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from smolvla.data import DatasetWriter

CAMERA = "observation.images.corner2"
STATE_DIM, ACTION_DIM = 39, 4


def synthetic_episode(frames: int, size: int, seed: int) -> dict[str, np.ndarray]:
    """One episode's arrays: uint8[T, S, S, 3] camera, float32[T, 39] state, float32[T, 4] action, float32[T]."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (size // 8 + 2, size // 8 + frames // 4 + 2, 3)).astype(np.float32)
    texture = np.repeat(np.repeat(texture, 8, 0), 8, 1)  # blocky scene that drifts 2 px per frame
    video = np.empty((frames, size, size, 3), np.uint8)
    for t in range(frames):
        view = texture[:size, 2 * t % 8 + 8 * (t // 4) : 2 * t % 8 + 8 * (t // 4) + size]
        video[t] = np.clip(view + rng.normal(0, 4, (size, size, 1)), 0, 255).astype(np.uint8)
    return {
        CAMERA: video,
        "observation.state": rng.normal(size=(frames, STATE_DIM)).astype(np.float32),
        "action": rng.uniform(-1, 1, (frames, ACTION_DIM)).astype(np.float32),
        "next.reward": rng.uniform(0, 10, frames).astype(np.float32),
    }


def features(size: int) -> dict:
    return {
        CAMERA: {"dtype": "video", "shape": [size, size, 3]},
        "observation.state": {"dtype": "float32", "shape": [STATE_DIM]},
        "action": {"dtype": "float32", "shape": [ACTION_DIM]},
        "next.reward": {"dtype": "float32", "shape": [1]},
    }


def run(root: Path, episodes: list[dict], size: int, batch: int | None) -> dict:
    """Write all episodes (batch=None: one add_episode call each); returns the timings and file sizes."""
    writer = DatasetWriter.create(root, fps=80, features=features(size), robot_type="metaworld")
    done_at = []  # (episodes saved so far, seconds since start)
    t0 = time.perf_counter()
    step = batch or 1
    for start in range(0, len(episodes), step):
        chunk = [(ep, f"task {i % 10}") for i, ep in enumerate(episodes[start : start + step], start)]
        if batch is None:
            writer.add_episode(*chunk[0])
        else:
            writer.add_episodes(chunk)
        done_at.append((start + len(chunk), time.perf_counter() - t0))
    total = done_at[-1][1]
    n = len(episodes)
    # throughput over the last fifth: from the first commit point at or after 80% of the episodes
    n0, t_0 = next((k, t) for k, t in done_at if k >= 0.8 * n)
    last = (n - n0) / (total - t_0) if total > t_0 else None
    sizes = {
        kind: sum(p.stat().st_size for p in (root / kind).rglob("*") if p.is_file()) for kind in ("data", "videos")
    }
    return {
        "seconds": round(total, 2),
        "episodes_per_s": round(n / total, 2),
        "last_fifth_episodes_per_s": round(last, 2) if last else None,
        "data_mb": round(sizes["data"] / 2**20, 2),
        "videos_mb": round(sizes["videos"] / 2**20, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=300, help="episodes written per mode")
    parser.add_argument("--frames", type=int, default=80, help="frames per episode")
    parser.add_argument("--size", type=int, default=64, help="camera height = width (even)")
    parser.add_argument("--batch", type=int, default=32, help="episodes per add_episodes call in the batched mode")
    parser.add_argument(
        "--modes", default="one_by_one,batched", help="comma-separated subset of one_by_one, batched (in this order)"
    )
    args = parser.parse_args()
    modes = args.modes.split(",")
    unknown = sorted(set(modes) - {"one_by_one", "batched"})
    if unknown or args.episodes < 1 or args.batch < 1:
        parser.error(f"need --episodes, --batch >= 1 and modes from one_by_one, batched; got unknown modes {unknown}")
    episodes = [synthetic_episode(args.frames, args.size, seed) for seed in range(args.episodes)]
    results = {}
    with tempfile.TemporaryDirectory(prefix="smolvla-bench-write-") as tmp:
        for mode in modes:
            batch = args.batch if mode == "batched" else None
            results[mode] = run(Path(tmp) / mode, episodes, args.size, batch)
    out = {"config": vars(args), "cpu_count": os.cpu_count(), "results": results}
    if {"one_by_one", "batched"} <= set(results):
        out["speedup"] = round(results["one_by_one"]["seconds"] / results["batched"]["seconds"], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
