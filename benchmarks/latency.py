"""Per-chunk inference latency of SmolVLAModel with random weights; prints JSON.

    python benchmarks/latency.py                                   # full size, 2 x 512px cameras, 2 threads
    python benchmarks/latency.py --preset tiny --image-size 64 --tokens 16
    python benchmarks/latency.py --repeats 1 --warmup 0 --int8     # also dynamic-int8 Linear layers

Reports the median `sample_actions` time (prefix once + `--steps` Euler steps), the stages timed on their
own (vision tower + connector per camera, the VLM prefix, one denoising step), analytic matmul FLOPs of
each stage, the achieved GFLOP/s against a measured fp32 matmul peak (the compute floor), and peak RSS.
Weights are random (built on the meta device, then filled with N(0, 0.02)): latency does not depend on them.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import resource
import statistics
import time
import warnings
from dataclasses import replace

import torch
from torch import nn

from smolvla.model.config import ModelConfig, get_config
from smolvla.model.smolvla import SmolVLAModel, build_random


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
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--device", default="cpu")
    p.add_argument("--int8", action="store_true", help="also time torch.ao dynamic int8 quantisation of Linears")
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


def time_model(model: SmolVLAModel, inputs: tuple[torch.Tensor, ...], args: argparse.Namespace) -> dict:
    """Median chunk latency and per-stage medians; returns the last chunk's actions too."""
    *obs, noise = inputs
    chunks, vision, prefill, steps = [], [], [], []
    with torch.inference_mode():
        for i in range(args.warmup + args.repeats):
            t_chunk, actions = _timed(args.device, model.sample_actions, *obs, noise=noise, num_steps=args.steps)
            t_vis, _ = _timed(args.device, model.embed_images, obs[0])
            t_pre, ctx = _timed(args.device, model.prefill, *obs)
            time_t = torch.full((noise.shape[0],), 0.5, device=args.device)
            t_step, _ = _timed(args.device, model.velocity, ctx, noise, time_t)
            if i >= args.warmup:
                chunks.append(t_chunk)
                vision.append(t_vis)
                prefill.append(t_pre)
                steps.append(t_step)
    t_vis = statistics.median(vision)
    return {
        "chunk_s": {"median": statistics.median(chunks), "min": min(chunks), "all": chunks},
        "stages_s": {
            "vision_per_camera": t_vis / args.cameras,
            "prefix": max(statistics.median(prefill) - t_vis, 0.0),
            "denoise_step": statistics.median(steps),
        },
        "actions": actions,
    }


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    cfg = get_config(args.preset)
    if args.image_size is not None:
        cfg = replace(cfg, vision=replace(cfg.vision, image_size=args.image_size))
    if args.tokens > cfg.max_lang_tokens:
        cfg = replace(cfg, max_lang_tokens=args.tokens)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    model = build_random(cfg, seed=args.seed, device=args.device).to(dtype).eval()
    inputs = make_inputs(cfg, args, dtype)

    result = time_model(model, inputs, args)
    actions = result.pop("actions")
    flops = chunk_flops(cfg, args.cameras, args.tokens, args.batch_size)
    total = args.cameras * flops["vision_per_camera"] + flops["prefix"] + args.steps * flops["denoise_step"]
    peak = matmul_gflops(args.device)
    out = {
        "benchmark": "latency",
        "args": vars(args),
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads()},
        "parameters": sum(p.numel() for p in model.parameters()),
        **result,
        "gflop": {k: v / 1e9 for k, v in flops.items()} | {"chunk": total / 1e9},
        "achieved_gflops": total / 1e9 / result["chunk_s"]["median"],
        "matmul_fp32_gflops": peak,
        "compute_floor_s": total / 1e9 / peak,
    }
    if args.int8:
        out["int8"] = run_int8(model, inputs, actions, args)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run_int8(model: SmolVLAModel, inputs: tuple[torch.Tensor, ...], reference: torch.Tensor, args) -> dict:
    """Dynamic int8 quantisation of every nn.Linear (weights int8, activations quantised per call).

    `reference` are the actions of the timed model; when that ran in bf16 an fp32 copy provides them instead.
    """
    if args.dtype != "fp32":
        with torch.inference_mode():
            *obs, noise = inputs
            obs = [x.float() if x.is_floating_point() else x for x in obs]
            reference = copy.deepcopy(model).float().sample_actions(*obs, noise=noise, num_steps=args.steps)
    with warnings.catch_warnings():  # torch.ao's deprecation notices; the API still works in this torch
        warnings.simplefilter("ignore")
        quantised = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).float(), {nn.Linear}, torch.qint8)
    result = time_model(quantised, inputs, args)
    actions = result.pop("actions")
    return result | {"max_abs_action_error_vs_fp32": (actions - reference.float()).abs().max().item()}


def main(argv: list[str] | None = None) -> None:
    print(json.dumps(run(parse_args(argv)), indent=2))


if __name__ == "__main__":
    main()
