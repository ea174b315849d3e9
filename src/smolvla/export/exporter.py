"""`export_policy`: a loaded SmolVLAPolicy -> an ONNX directory the torch-free `OnnxPolicy` serves.

The directory is written atomically (a failed or killed export leaves no half-written DIR). Stats, config
and tokenizer come from the loaded policy, so our checkpoints and imported LeRobot ones export alike.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from smolvla.deploy.manifest import (
    CONFIG_FILE,
    FORMAT,
    FORMAT_VERSION,
    STATS_FILE,
    TOKENIZER_FILE,
    Precision,
    RuntimeSpec,
)
from smolvla.export.graphs import export_graphs
from smolvla.export.guide_graph import export_guide
from smolvla.export.quantize import quantize_dir
from smolvla.policy.atomic_dir import atomic_dir
from smolvla.policy.policy import SmolVLAPolicy

log = logging.getLogger(__name__)

# One calibration sample for int8-static: (images uint8[1, H, W, 3] per camera, state float32[1, D], task).
Sample = tuple[dict[str, np.ndarray], np.ndarray, str]


def runtime_spec(policy: SmolVLAPolicy, precision: Precision, source: str) -> RuntimeSpec:
    """export.json for `policy`: the interface facts of its PolicyConfig, flattened."""
    cfg, model = policy.config, policy.config.model
    return RuntimeSpec(
        format=FORMAT,
        version=FORMAT_VERSION,
        precision=precision,
        camera_keys=tuple(cfg.camera_keys),
        empty_cameras=cfg.empty_cameras,
        image_size=cfg.image_size,
        max_lang_tokens=cfg.max_lang_tokens,
        truncate_task=cfg.truncate_task,
        state_dim=cfg.state_dim,
        action_dim=cfg.action_dim,
        max_state_dim=model.max_state_dim,
        max_action_dim=model.max_action_dim,
        chunk_size=cfg.chunk_size,
        n_action_steps=cfg.n_action_steps,
        num_steps=model.num_steps,
        expert_layers=len(policy.model.expert.layers),
        state_norm=cfg.state_norm,
        action_norm=cfg.action_norm,
        norm_eps=cfg.norm_eps,
        source=source,
    )


def export_policy(
    policy: SmolVLAPolicy,
    out: str | Path,
    *,
    precision: Precision = "fp32",
    calibration: Iterable[Sample] | None = None,
    source: str = "policy",
    rtc: bool = True,
) -> Path:
    """Write the ONNX graphs (quantised as `precision` asks), export.json, stats, tokenizer and config to
    `out`; every graph passes onnx.checker. int8-static needs `calibration` samples (dataset frames).

    rtc: also write guide.onnx (float32 whatever `precision`: real-time chunking's guided step; it holds a
    second copy of the expert's weights, so `rtc=False` saves that much disk where RTC is not wanted)."""
    if policy.tokenizer is None:
        raise ValueError("the policy has no tokenizer: an exported policy must tokenise task strings itself")
    if precision == "int8-static" and calibration is None:
        raise ValueError("int8-static needs calibration samples (smolvla export --calibration DATASET)")
    if precision != "int8-static" and calibration is not None:
        raise ValueError(f"calibration samples are for int8-static only, not {precision}")
    out = Path(out)
    policy = policy.to("cpu", torch.float32).eval()
    spec = runtime_spec(policy, precision, source)
    with atomic_dir(out) as tmp:
        (tmp / "export.json").write_text(spec.to_json())
        (tmp / CONFIG_FILE).write_text(policy.config.to_json())
        save_file({k: v.contiguous() for k, v in policy.stats.to_flat().items()}, str(tmp / STATS_FILE))
        (tmp / TOKENIZER_FILE).write_text(policy.tokenizer.to_json())
        export_graphs(policy.model, policy.config.num_cameras, tmp)
        if rtc:
            export_guide(policy.model, policy.config.num_cameras, tmp)
        if precision != "fp32":
            quantize_dir(tmp, precision, list(calibration) if calibration is not None else None)
        check_graphs(tmp)
    log.info("exported %s (%s) to %s", source, precision, out)
    return out


def check_graphs(directory: Path) -> None:
    """onnx.checker on every graph (by path: the full-size graphs are over protobuf's 2 GB in-memory limit)."""
    import onnx

    from smolvla.deploy.manifest import DENOISE_ONNX, GUIDE_ONNX, PREFIX_ONNX

    for name in (PREFIX_ONNX, DENOISE_ONNX, GUIDE_ONNX):
        if name != GUIDE_ONNX or (directory / name).is_file():
            onnx.checker.check_model(str(directory / name))
