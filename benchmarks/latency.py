"""Per-chunk inference latency of SmolVLA with random weights, every engine in one run; prints JSON.

    python benchmarks/latency.py                                   # full size, 2 x 512px cameras, 2 threads
    python benchmarks/latency.py --preset tiny --image-size 64 --tokens 16
    python benchmarks/latency.py --engines torch-fp32,onnx-int8 --repeats 1 --warmup 0
    SMOLVLA_LEROBOT_SRC=/tmp/lrpkg:/tmp/lrdeps python benchmarks/latency.py --vs-lerobot

Engines: torch-fp32, torch-bf16 (our model), onnx-fp32, onnx-int8 (the same weights exported with
`smolvla.export` and run on ONNX Runtime; int8 = dynamic, as `smolvla export --quantize int8-dynamic`).
`--vs-lerobot` also times LeRobot 0.6.1's own VLAFlowMatching (its modelling code only, from an unpacked
wheel, see benchmarks/lerobot_side.py) holding the same weights, so every ratio comes from one run on one
machine; the engines take turns chunk by chunk, so a load change on a shared machine hits them alike.
For each engine: the median chunk time (prefix once + `--steps` Euler steps), its stages (torch:
vision tower + connector per camera, VLM prefix, one denoising step; onnx: prefix graph incl. vision, one
denoising graph call), the max abs action difference from torch-fp32 on the same inputs and noise, and the
ratio to the compute floor (analytic matmul FLOPs at the fp32 matmul peak measured in the same run).
Weights are random (built on the meta device, then filled with N(0, 0.02)): latency does not depend on them.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from smolvla.model.config import ModelConfig, get_config
from smolvla.model.smolvla import SmolVLAModel, build_random
from smolvla.policy.precision import cpu_flags, resolve_dtype

ENGINES = ("torch-fp32", "torch-bf16", "onnx-fp32", "onnx-int8")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="smolvla_base", help="model preset: smolvla_base | small | tiny")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--cameras", type=int, default=2)
    p.add_argument("--image-size", type=int, default=None, help="camera side in pixels (default: the preset's)")
    p.add_argument("--tokens", type=int, default=48, help="language tokens (all valid)")
    p.add_argument("--steps", type=int, default=10, help="Euler denoising steps")
    p.add_argument("--repeats", type=int, default=3, help="timed chunks")
    p.add_argument("--warmup", type=int, default=1, help="untimed chunks first")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated, of {', '.join(ENGINES)}")
    p.add_argument("--vs-lerobot", action="store_true", help="also time LeRobot 0.6.1 (SMOLVLA_LEROBOT_SRC)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def chunk_flops(cfg: ModelConfig, cameras: int, tokens: int, batch: int) -> dict[str, float]:
    """Matmul FLOPs (2 per multiply-add) of each stage; norms, softmax and elementwise ops are ignored."""
    vc, dec = cfg.vision, cfg.decoder
    n, d = vc.num_patches, vc.hidden
    vision = n * (2 * 3 * vc.patch_size**2 * d) + vc.layers * (2 * n * (4 * d * d + 2 * d * vc.mlp) + 4 * n * n * d)
    vision += 2 * cfg.tokens_per_image * cfg.connector_in_features * dec.hidden
    p, s = cameras * cfg.tokens_per_image + tokens + 1, cfg.chunk_size
    qo, kv = dec.heads * dec.head_dim, dec.kv_heads * dec.head_dim
    vlm_layer = 2 * p * (2 * dec.hidden * qo + 2 * dec.hidden * kv + 3 * dec.hidden * dec.mlp) + 4 * p * p * qo
    n_cross = sum(not cfg.is_self_attn_layer(i) for i in range(dec.layers))
    # The last VLM layer only produces keys/values; cross layers' prefix k/v projections run once per chunk.
    prefix = (dec.layers - 1) * vlm_layer + 2 * p * 2 * dec.hidden * kv + n_cross * 2 * p * 2 * kv * kv
    de = cfg.expert_hidden
    step = 2 * s * (cfg.max_action_dim * de + 3 * de * de + de * cfg.max_action_dim)
    for i in range(dec.layers):
        step += 2 * s * (2 * de * qo + 3 * de * cfg.expert_mlp)
        if cfg.is_self_attn_layer(i):
            step += 2 * s * 2 * de * kv + 4 * s * (p + s) * qo
        else:
            step += 4 * s * p * qo
    return {"vision_per_camera": batch * vision, "prefix": batch * prefix, "denoise_step": batch * step}


def matmul_gflops(device: str, size: int = 2048, repeats: int = 5) -> float:
    """Measured fp32 matmul throughput, the practical compute ceiling of this machine."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(device: str, fn, *args, **kwargs) -> tuple[float, object]:
    _sync(device)
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    _sync(device)
    return time.perf_counter() - start, out


def make_inputs(cfg: ModelConfig, args: argparse.Namespace, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(args.seed)
    b, side = args.batch_size, cfg.vision.image_size
    images = (torch.rand(b, args.cameras, 3, side, side, generator=g) * 2 - 1).to(args.device, dtype)
    image_masks = torch.ones(b, args.cameras, dtype=torch.bool, device=args.device)
    lang_tokens = torch.randint(0, cfg.decoder.vocab_size, (b, args.tokens), generator=g).to(args.device)
    lang_masks = torch.ones(b, args.tokens, dtype=torch.bool, device=args.device)
    state = torch.randn(b, cfg.max_state_dim, generator=g).to(args.device, dtype)
    noise = torch.randn(b, cfg.chunk_size, cfg.max_action_dim, generator=g).to(args.device)
    return images, image_masks, lang_tokens, lang_masks, state, noise


# An engine: one chunk from the fixed inputs -> (actions float32[B, S, A], stage times measured inside it).
Engine = Callable[[], tuple[torch.Tensor, dict[str, float]]]


def torch_engine(model: SmolVLAModel, inputs: tuple[torch.Tensor, ...], args: argparse.Namespace) -> Engine:
    *obs, noise = inputs

    def chunk() -> tuple[torch.Tensor, dict[str, float]]:
        with torch.inference_mode():
            return model.sample_actions(*obs, noise=noise, num_steps=args.steps).float(), {}

    return chunk


def torch_stages(model: SmolVLAModel, inputs: tuple[torch.Tensor, ...], args: argparse.Namespace) -> dict:
    """The torch stages timed on their own, once: vision tower + connector per camera, the VLM prefix, one
    denoising step."""
    *obs, noise = inputs
    with torch.inference_mode():
        t_vis, _ = _timed(args.device, model.embed_images, obs[0])
        t_pre, ctx = _timed(args.device, model.prefill, *obs)
        time_t = torch.full((noise.shape[0],), 0.5, device=args.device)
        t_step, _ = _timed(args.device, model.velocity, ctx, noise, time_t)
    return {"vision_per_camera": t_vis / args.cameras, "prefix": max(t_pre - t_vis, 0.0), "denoise_step": t_step}


def onnx_sessions(model: SmolVLAModel, args: argparse.Namespace, workdir: Path, precision: str) -> tuple:
    """ONNX Runtime sessions of the model's exported prefix and denoising graphs (quantised for int8). The
    float32 export in `workdir` is made once and copied for each quantised variant."""
    import onnxruntime as ort

    from smolvla.deploy.manifest import DENOISE_ONNX, PREFIX_ONNX
    from smolvla.export.graphs import export_graphs
    from smolvla.export.quantize import quantize_dir

    fp32 = workdir / "fp32"
    if not fp32.is_dir():
        fp32.mkdir()
        export_graphs(model, args.cameras, fp32)
    directory = fp32
    if precision != "fp32":
        directory = workdir / precision
        shutil.copytree(fp32, directory)
        quantize_dir(directory, precision, None)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
    return tuple(
        ort.InferenceSession(str(directory / name), options, providers=["CPUExecutionProvider"])
        for name in (PREFIX_ONNX, DENOISE_ONNX)
    )


def onnx_engine(sessions: tuple, inputs: tuple[torch.Tensor, ...], args: argparse.Namespace) -> Engine:
    """The ONNX graphs driven the way `smolvla.deploy.OnnxPolicy.sample` drives them; stages timed inside."""
    from smolvla.deploy.manifest import PREFIX_INPUTS
    from smolvla.deploy.onnx_policy import euler_times

    prefix, denoise = sessions
    *obs, noise = (x.cpu().numpy() for x in inputs)
    feeds = dict(zip(PREFIX_INPUTS, obs, strict=True))
    names = [o.name for o in prefix.get_outputs()]
    b, dt = noise.shape[0], np.float32(-1.0 / args.steps)

    def chunk() -> tuple[torch.Tensor, dict[str, float]]:
        start = time.perf_counter()
        context = dict(zip(names, prefix.run(names, feeds), strict=True))
        t_prefix = time.perf_counter() - start
        x, t_steps = noise, []
        for t in euler_times(args.steps):
            step = time.perf_counter()
            x = x + dt * denoise.run(None, {"x_t": x, "time": np.full((b,), t, np.float32), **context})[0]
            t_steps.append(time.perf_counter() - step)
        return torch.from_numpy(x), {"prefix_incl_vision": t_prefix, "denoise_step": statistics.median(t_steps)}

    return chunk


def build_engines(model: SmolVLAModel, inputs: tuple, args: argparse.Namespace, names: list[str], workdir: Path):
    """{name: Engine} in `names` order, and {name: torch model} for the torch engines (their stages)."""
    engines, models = {}, {}
    for name in names:
        kind, precision = name.split("-", 1)
        if kind == "lerobot":
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from lerobot_side import lerobot_engine

            engines[name] = lerobot_engine(model, inputs, args)
        elif kind == "torch":
            dtype = resolve_dtype(precision)
            models[name] = model if dtype == torch.float32 else copy.deepcopy(model).to(dtype)
            engines[name] = torch_engine(models[name], inputs, args)
        else:
            sessions = onnx_sessions(model, args, workdir, "fp32" if precision == "fp32" else "int8-dynamic")
            engines[name] = onnx_engine(sessions, inputs, args)
    return engines, models


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown or not engines:
        raise SystemExit(f"--engines: unknown {unknown}; choose from {', '.join(ENGINES)}")
    cfg = get_config(args.preset)
    if args.image_size is not None:
        cfg = replace(cfg, vision=replace(cfg.vision, image_size=args.image_size))
    cfg = replace(cfg, max_lang_tokens=args.tokens)  # the exported graphs take exactly this many tokens
    model = build_random(cfg, seed=args.seed, device=args.device).eval()
    inputs = make_inputs(cfg, args, torch.float32)
    flops = chunk_flops(cfg, args.cameras, args.tokens, args.batch_size)
    total = args.cameras * flops["vision_per_camera"] + flops["prefix"] + args.steps * flops["denoise_step"]
    peak = matmul_gflops(args.device)
    floor = total / 1e9 / peak

    # Engines take turns chunk by chunk (round-robin), so that a change in the load of a shared machine hits
    # all of them alike; torch-fp32 (the reference of every action difference) and LeRobot come first.
    names = ["torch-fp32", *(["lerobot-fp32"] if args.vs_lerobot else []), *(e for e in engines if e != "torch-fp32")]
    with tempfile.TemporaryDirectory(prefix="smolvla_latency_") as workdir:
        runners, models = build_engines(model, inputs, args, names, Path(workdir))
    times: dict[str, list[float]] = {n: [] for n in names}
    stages: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    actions: dict[str, torch.Tensor] = {}
    for i in range(args.warmup + args.repeats):
        for name, chunk in runners.items():
            elapsed, (actions[name], inside) = _timed(args.device, chunk)
            if i >= args.warmup:
                times[name].append(elapsed)
                stages[name].append(inside)
        print(json.dumps({"round": i, **{n: t[-1:] for n, t in times.items()}}), file=sys.stderr, flush=True)
    results = {}
    for name in names:
        if name not in engines and name != "lerobot-fp32":
            continue
        chunks = times[name]
        result = {"chunk_s": {"median": statistics.median(chunks), "min": min(chunks), "all": chunks}}
        if name in models:
            result["stages_s"] = torch_stages(models[name], inputs, args)
        elif stages[name][0]:
            result["stages_s"] = {k: statistics.median(s[k] for s in stages[name]) for k in stages[name][0]}
        diff = (actions[name].float().cpu() - actions["torch-fp32"].float().cpu()).abs().max().item()
        result["max_abs_action_diff_vs_torch_fp32"] = diff
        result["x_compute_floor"] = result["chunk_s"]["median"] / floor
        results[name] = result
    out = {
        "benchmark": "latency",
        "args": vars(args),
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "native_bf16": resolve_dtype("auto") == torch.bfloat16,
            "cpu_flags_bf16": sorted(f for f in cpu_flags() if "bf16" in f),
        },
        "parameters": sum(p.numel() for p in model.parameters()),
        "gflop": {k: v / 1e9 for k, v in flops.items()} | {"chunk": total / 1e9},
        "matmul_fp32_gflops": peak,
        "compute_floor_s": floor,
        "engines": results,
    }
    if args.vs_lerobot:
        base = results["lerobot-fp32"]["chunk_s"]["median"]
        out["x_lerobot_fp32"] = {name: r["chunk_s"]["median"] / base for name, r in results.items()}
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main(argv: list[str] | None = None) -> None:
    print(json.dumps(run(parse_args(argv)), indent=2))


if __name__ == "__main__":
    main()
