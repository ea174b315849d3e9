"""Real-time chunking on the ONNX engine against the torch engine: max |actions| difference, fixed noise.

The ONNX engine takes RTC's vector-Jacobian product from guide.onnx (exported by `smolvla export`); this
measures how far its guided chunks land from the torch policy's (`torch.autograd`) on the same inputs, over
seeds x inference delays x maximum guidance weights, with two batch elements each guided by its own prefix
(the unguided plan shifted by +1.5 / -1.0 raw units). Also reports how far guidance moved the chunk
(max |guided - plain|), so the difference can be read against the size of the effect.

    python benchmarks/rtc_onnx_parity.py                          # the tiny preset, random weights
    python benchmarks/rtc_onnx_parity.py --policy assets/demo_policy

Prints JSON (and writes it to --out). Runs on one thread; a few seconds for tiny, a minute for the demo policy.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from smolvla.deploy.onnx_policy import OnnxPolicy
from smolvla.deploy.rtc import PrefixArrays, RTCConfig
from smolvla.export.exporter import export_policy
from smolvla.policy.policy import SmolVLAPolicy
from smolvla.policy.rtc import RTCGuide
from smolvla.policy.testing import make_tiny_policy
from smolvla.policy.transforms import frames_to_images


def _inputs(policy: SmolVLAPolicy, seed: int, batch: int = 2):
    """Wire arrays as tests/export's `wire_batch` makes them (48x64 frames) and the flow's start noise."""
    rng = np.random.default_rng(seed)
    images = {k: rng.integers(0, 256, (batch, 48, 64, 3), dtype=np.uint8) for k in policy.config.camera_keys}
    state = rng.standard_normal((batch, policy.config.state_dim)).astype(np.float32)
    tasks = ["pick up the cube", "open the drawer"][:batch] + ["push"] * max(0, batch - 2)
    shape = (batch, policy.config.chunk_size, policy.config.model.max_action_dim)
    return images, state, tasks, np.random.default_rng(seed + 10).standard_normal(shape).astype(np.float32)


def _torch_chunk(policy: SmolVLAPolicy, images, state, tasks, noise, guide: RTCGuide) -> np.ndarray:
    batch = {k: frames_to_images(v) for k, v in images.items()}
    batch["observation.state"] = torch.from_numpy(state)
    batch["task"] = list(tasks)
    with torch.no_grad():
        return policy.predict_action_chunk(batch, noise=torch.from_numpy(noise), rtc=guide).numpy()


def measure(policy: SmolVLAPolicy, seeds: int) -> dict:
    out_dir = Path(tempfile.mkdtemp()) / "onnx"
    onnx_policy = OnnxPolicy(export_policy(policy, out_dir, source="parity"), threads=1)
    chunk = policy.config.chunk_size
    cases = []
    for seed in range(seeds):
        images, state, tasks, noise = _inputs(policy, seed)
        plain = onnx_policy.predict(images, state, tasks, noise=noise)
        prefixes = [plain[0, : (4 * chunk) // 5] + 1.5, plain[1, : (3 * chunk) // 5] - 1.0]
        for delay in (0, 2, 5):
            for beta in (1.0, 5.0, 10.0):
                config = RTCConfig(max_guidance_weight=beta)
                arrays = PrefixArrays.build(prefixes, [delay, delay], chunk, config)
                got = onnx_policy.predict(images, state, tasks, noise=noise, rtc=arrays)
                guide = RTCGuide.build(prefixes, [delay, delay], chunk, config)
                want = _torch_chunk(policy, images, state, tasks, noise, guide)
                cases.append(
                    {
                        "seed": seed,
                        "delay": delay,
                        "max_guidance_weight": beta,
                        "max_abs_diff": float(np.abs(got - want).max()),
                        "guidance_effect": float(np.abs(want - plain).max()),
                    }
                )
    return {
        "cases": cases,
        "worst_max_abs_diff": max(c["max_abs_diff"] for c in cases),
        "smallest_guidance_effect": min(c["guidance_effect"] for c in cases),
        "export_bytes": {f.name: f.stat().st_size for f in sorted(out_dir.iterdir())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path, default=None, help="checkpoint dir (default: tiny random policy)")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.policy is None:
        cams = ("observation.images.top", "observation.images.wrist")
        policy, name = make_tiny_policy(camera_keys=cams, empty_cameras=1, seed=3), "tiny preset (random weights)"
    else:
        policy, name = SmolVLAPolicy.from_pretrained(args.policy).eval(), str(args.policy)
    cfg = policy.config
    result = {
        "policy": name,
        "chunk_size": cfg.chunk_size,
        "num_steps": cfg.model.num_steps,
        "action_dim": cfg.action_dim,
        "batch": 2,
        "torch": torch.__version__,
        **measure(policy, args.seeds),
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
