"""Data-loading throughput for SmolVLA-style samples, printed as JSON.

Writes a synthetic dataset with our writer into a temp dir (2 cameras, 480x640, AV1 g=2 crf=30 as
LeRobot; 6-dim state/action), then measures
  * random single-frame decode rate, frames/s on one core: ours (containers kept open per process) vs a
    reopen-per-call baseline equivalent to LeRobot's pyav path (open, seek, decode to the frame, close);
  * samples/s of `LeRobotDataset` with SmolVLA's delta_timestamps (action chunk 50, cameras at [0]),
    shuffled, through a torch DataLoader with 0, 1 and 2 workers.
The machine is shared, so figures vary run to run; the JSON records the CPU count.

    python benchmarks/dataloading.py --episodes 4 --frames 150 --samples 200
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from smolvla.data import DatasetWriter, LeRobotDataset
from smolvla.data.video import close_readers, decode_frames

CAMERAS = ("observation.images.top", "observation.images.wrist")


def synthetic_frames(length: int, h: int, w: int, seed: int) -> np.ndarray:
    """uint8[T, H, W, 3]: a textured scene panning slowly, a moving object and sensor noise.

    Texture (smoothed noise at several scales) keeps the AV1 bitrate near real tabletop recordings
    (~10-20 KB per 480x640 frame at crf 30); a flat synthetic image would make decoding unrealistically cheap.
    """
    rng = np.random.default_rng(seed)
    big_h, big_w = h + length, w + 2 * length
    texture = np.zeros((big_h, big_w, 3), np.float32)
    for scale, amp in ((32, 60.0), (8, 25.0), (2, 8.0)):
        coarse = rng.normal(size=(big_h // scale + 2, big_w // scale + 2, 3)).astype(np.float32)
        texture += amp * np.repeat(np.repeat(coarse, scale, 0), scale, 1)[:big_h, :big_w]
    texture = np.clip(texture + 128, 0, 255)
    out = np.empty((length, h, w, 3), np.uint8)
    for t in range(length):
        frame = texture[t : t + h, 2 * t : 2 * t + w].copy()
        y0, x0 = (5 * t) % (h - 80), (7 * t) % (w - 80)
        frame[y0 : y0 + 80, x0 : x0 + 80] = [230, 40, 40]
        frame += rng.normal(0, 2.0, (h, w, 1)).astype(np.float32)
        out[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return out


def write_dataset(root: Path, episodes: int, frames: int, h: int, w: int) -> float:
    features = {k: {"dtype": "video", "shape": [h, w, 3]} for k in CAMERAS}
    features |= {"observation.state": {"dtype": "float32", "shape": [6]}, "action": {"dtype": "float32", "shape": [6]}}
    writer = DatasetWriter.create(root, fps=30, features=features, robot_type="so100")
    t0 = time.perf_counter()
    for ep in range(episodes):
        state = np.cumsum(np.random.default_rng(ep).normal(size=(frames, 6)), 0).astype(np.float32)
        data = {k: synthetic_frames(frames, h, w, 10 * ep + i) for i, k in enumerate(CAMERAS)}
        writer.add_episode(data | {"observation.state": state, "action": state + 0.5}, task="Pick up the cube.")
    return time.perf_counter() - t0


def reopen_decode(path: Path, t: float) -> np.ndarray:
    """Baseline: LeRobot's pyav access pattern (fresh container per query, seek to keyframe, decode)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        c.seek(max(int(t / float(s.time_base)) - 1, 0), stream=s, backward=True)
        for frame in c.decode(s):
            if frame.pts * float(s.time_base) >= t - 1e-4:
                return frame.to_ndarray(format="rgb24")
    raise RuntimeError("frame not found")


def _cpu_seconds() -> float:
    """CPU time of this process plus its finished children (DataLoader workers), user + system."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def _rates(n: int, wall: float, cpu: float) -> dict[str, float]:
    return {"per_s_wall": round(n / wall, 1), "per_cpu_s": round(n / cpu, 1)}


def random_decode_rate(ds: LeRobotDataset, n: int, reopen: bool) -> dict[str, float]:
    rng = random.Random(0)
    eps = ds.meta.episodes
    close_readers()
    wall, cpu = time.perf_counter(), _cpu_seconds()
    for _ in range(n):
        i = rng.randrange(len(ds))
        ep = int(ds._columns["episode_index"][i])
        path = ds.root / str(eps[f"videos/{CAMERAS[0]}/path"][ep])
        t = float(eps[f"videos/{CAMERAS[0]}/from_timestamp"][ep]) + float(ds._columns["timestamp"][i])
        reopen_decode(path, t) if reopen else decode_frames(path, [t], 1e-4, ep)
    return _rates(n, time.perf_counter() - wall, _cpu_seconds() - cpu)


def loader_rate(ds: LeRobotDataset, workers: int, samples: int, batch: int) -> dict[str, float]:
    sampler = torch.utils.data.RandomSampler(ds, num_samples=samples, generator=torch.Generator().manual_seed(0))
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, sampler=sampler, num_workers=workers)
    close_readers()
    wall, cpu = time.perf_counter(), _cpu_seconds()
    n = sum(len(b["index"]) for b in loader)
    del loader  # joins the workers so their CPU time is counted
    return _rates(n, time.perf_counter() - wall, _cpu_seconds() - cpu)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=4)
    p.add_argument("--frames", type=int, default=150, help="frames per episode")
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--samples", type=int, default=200, help="samples per DataLoader measurement")
    p.add_argument("--decode-queries", type=int, default=200, help="random single-frame decodes per method")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synthetic"
        write_s = write_dataset(root, args.episodes, args.frames, args.height, args.width)
        delta = {"observation.state": [0.0], "action": [i / 30 for i in range(50)]}
        delta |= {k: [0.0] for k in CAMERAS}
        ds = LeRobotDataset(root, delta_timestamps=delta)
        result = {
            "cpu_count": os.cpu_count(),
            "note": "shared CPU: wall rates vary with other load; per_cpu_s = items per CPU-second (per core)",
            "dataset": {"episodes": args.episodes, "frames": len(ds), "cameras": len(CAMERAS)},
            "resolution": [args.height, args.width],
            "write_s": round(write_s, 2),
            "write_frames_per_s": round(len(ds) / write_s, 1),
            "video_kb_per_frame": round(
                sum(f.stat().st_size for f in (root / "videos").rglob("*.mp4")) / 1024 / len(ds) / len(CAMERAS), 1
            ),
            "random_frame_decode_per_s": {
                "ours_open_containers": random_decode_rate(ds, args.decode_queries, reopen=False),
                "reopen_per_call_baseline": random_decode_rate(ds, args.decode_queries, reopen=True),
            },
            "samples_per_s": {},
        }
        for w in args.workers:
            result["samples_per_s"][f"workers_{w}"] = loader_rate(ds, w, args.samples, args.batch_size)
        # uint8 cameras: 4x fewer bytes through the worker -> main process queue (convert on the consumer side)
        ds_u8 = LeRobotDataset(root, delta_timestamps=delta, return_uint8=True)
        result["samples_per_s_uint8_cameras"] = {
            f"workers_{w}": loader_rate(ds_u8, w, args.samples, args.batch_size) for w in args.workers
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
