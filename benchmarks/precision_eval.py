"""What each precision costs a trained policy: action error against torch fp32 and simulated success; JSON.

    python benchmarks/precision_eval.py --checkpoint assets/demo_policy --calibration DATASET \\
        --tasks button-press-topdown-v3,drawer-close-v3 --episodes 10 --max-steps 200

Engines: torch-fp32, torch-bf16, and the policy exported with `smolvla.export` as onnx-fp32, onnx-int8-dynamic,
onnx-int8-static (calibrated on `--calibration-frames` frames of DATASET) and onnx-fp16, served by the
torch-free OnnxPolicy. Action error: on `--error-frames` frames of DATASET (drawn at random, seeded), each
engine predicts a chunk from the same noise; max and mean |a - a_fp32| in raw action units. Success: every
engine plays the same seeded Meta-World episodes through the eval runner, executing the checkpoint's
n_action_steps of each chunk (the flow noise is random, so success differs between engines within noise).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch

from smolvla.eval.agents import PolicyAgent
from smolvla.eval.runner import EvalConfig, evaluate
from smolvla.export.calibration import dataset_samples
from smolvla.export.exporter import export_policy
from smolvla.policy.policy import SmolVLAPolicy
from smolvla.policy.transforms import frames_to_images
from smolvla.types import OBS_STATE, TASK

ONNX = ("onnx-fp32", "onnx-int8-dynamic", "onnx-int8-static", "onnx-fp16")
ENGINES = ("torch-fp32", "torch-bf16", *ONNX)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=Path("assets/demo_policy"))
    p.add_argument("--calibration", type=Path, required=True, help="LeRobot dataset with the policy's cameras")
    p.add_argument("--calibration-frames", type=int, default=32)
    p.add_argument("--error-frames", type=int, default=32)
    p.add_argument("--tasks", default="button-press-topdown-v3,drawer-close-v3", help="Meta-World task names")
    p.add_argument("--episodes", type=int, default=10, help="per task; 0 skips the simulation")
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--max-steps", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--engines", default=",".join(ENGINES))
    return p.parse_args(argv)


class OnnxAgent:
    """The exported policy acting through an action queue, as `PolicyAgent` does with the torch one."""

    def __init__(self, policy, n_action_steps: int) -> None:
        self.policy, self.n = policy, n_action_steps
        self.queue: deque[np.ndarray] = deque()

    def reset(self) -> None:
        self.queue.clear()

    def act(self, obs: dict) -> np.ndarray:
        if not self.queue:
            images = {k: np.asarray(obs[k])[None] for k in self.policy.config.camera_keys}
            state = np.asarray(obs[OBS_STATE], dtype=np.float32)[None]
            self.queue.extend(self.policy.predict(images, state, [obs[TASK]])[0, : self.n])
        return self.queue.popleft()


def torch_chunk(policy: SmolVLAPolicy, sample, noise: np.ndarray) -> np.ndarray:
    images, state, task = sample
    batch = {k: frames_to_images(v) for k, v in images.items()} | {OBS_STATE: torch.from_numpy(state), TASK: [task]}
    with torch.inference_mode():
        return policy.predict_action_chunk(batch, noise=torch.from_numpy(noise)).float().numpy()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    engines = [e for e in args.engines.split(",") if e]
    if unknown := sorted(set(engines) - set(ENGINES)):
        raise SystemExit(f"--engines: unknown {unknown}; choose from {', '.join(ENGINES)}")
    from smolvla.deploy.onnx_policy import OnnxPolicy

    fp32 = SmolVLAPolicy.from_pretrained(args.checkpoint).eval()
    cfg = fp32.config
    calibration = dataset_samples(args.calibration, cfg.camera_keys, args.calibration_frames)
    rng = np.random.default_rng(0)
    frames = dataset_samples(args.calibration, cfg.camera_keys, 10**9)  # every frame, then a seeded draw
    frames = [frames[i] for i in rng.choice(len(frames), size=min(args.error_frames, len(frames)), replace=False)]
    noises = [rng.standard_normal((1, cfg.chunk_size, cfg.model.max_action_dim)).astype(np.float32) for _ in frames]
    reference = [torch_chunk(fp32, f, n) for f, n in zip(frames, noises, strict=True)]

    out = {"benchmark": "precision_eval", "args": {k: str(v) for k, v in vars(args).items()}, "engines": {}}
    out["machine"] = {"platform": platform.platform(), "torch": torch.__version__}
    eval_cfg = EvalConfig(
        envs=tuple(f"metaworld/{t}" for t in args.tasks.split(",")),
        episodes=max(args.episodes, 1),
        seed=args.seed,
        max_steps=args.max_steps,
        threads=args.threads,
    )
    with tempfile.TemporaryDirectory(prefix="smolvla_precision_") as tmp:
        for name in engines:
            if name.startswith("torch"):
                policy = (
                    fp32
                    if name == "torch-fp32"
                    else SmolVLAPolicy.from_pretrained(args.checkpoint, dtype=torch.bfloat16)
                )
                chunks = [torch_chunk(policy, f, n) for f, n in zip(frames, noises, strict=True)]
                factory = lambda policy=policy: PolicyAgent(policy)  # noqa: E731
            else:
                precision = name.removeprefix("onnx-")
                samples = calibration if precision == "int8-static" else None
                directory = export_policy(fp32, Path(tmp) / precision, precision=precision, calibration=samples)
                policy = OnnxPolicy(directory, threads=args.threads)
                chunks = [policy.predict(*_wire(f), noise=n) for f, n in zip(frames, noises, strict=True)]
                factory = lambda policy=policy: OnnxAgent(policy, cfg.n_action_steps)  # noqa: E731
            err = np.abs(np.concatenate(chunks) - np.concatenate(reference))
            result = {"max_abs_action_error_vs_torch_fp32": float(err.max()), "mean_abs": float(err.mean())}
            if args.episodes:
                start = time.perf_counter()
                episodes = evaluate(eval_cfg, factory, progress=False)
                result["success_rate"] = sum(e.success for e in episodes) / len(episodes)
                result["episodes"] = len(episodes)
                result["eval_s"] = time.perf_counter() - start
            out["engines"][name] = result
            print(json.dumps({name: result}), flush=True)
    print(json.dumps(out, indent=2))


def _wire(sample) -> tuple:
    images, state, task = sample
    return images, state, [task]


if __name__ == "__main__":
    main()
