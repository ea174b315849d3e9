"""The exported-policy directory: file names, graph input/output names and `export.json`, shared by the
exporter (`smolvla.export`, torch) and the torch-free runtime (`smolvla.deploy.onnx_policy`).

    DIR/
      export.json        RuntimeSpec below: everything the runtime needs, no torch config classes
      prefix.onnx        images, image_masks, lang_tokens, lang_masks, state -> the expert context
      denoise.onnx       x_t, time, the expert context -> velocity (one Euler step)
      guide.onnx         optional (real-time chunking): x_t, time, target, weights, the expert context ->
                         velocity, guidance (one step and RTC's vector-Jacobian product; batch 1, float32
                         at every precision; see smolvla.export.guide_graph)
      stats.safetensors  "<feature>.<stat>" float32[D] (mean/std of observation.state and action)
      tokenizer.json     the policy's task tokenizer
      config.json        the source policy's config (for people; the runtime reads export.json)

The expert context is SmolVLAModel.prefill's `ExpertContext` flattened (see `context_names`):

    k0 v0 k1 v1 ...      float32[B, KV, P, hd] per expert layer (post-RoPE VLM keys/values for self-attention
                         layers, expert-projected ones for cross-attention layers)
    self_cos self_sin    float32[B, 1, S, hd/2]; cross_cos cross_sin likewise
    self_mask            additive float32[B, 1, S, P + S]; cross_mask additive float32[B, 1, S, P]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from smolvla import configio

EXPORT_JSON = "export.json"
PREFIX_ONNX = "prefix.onnx"
DENOISE_ONNX = "denoise.onnx"
GUIDE_ONNX = "guide.onnx"
STATS_FILE = "stats.safetensors"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "config.json"
FORMAT = "smolvla-onnx"
FORMAT_VERSION = 1

PREFIX_INPUTS = ("images", "image_masks", "lang_tokens", "lang_masks", "state")
DENOISE_STEP_INPUTS = ("x_t", "time")
VELOCITY = "velocity"
GUIDE_STEP_INPUTS = ("x_t", "time", "target", "weights")
GUIDANCE = "guidance"
_CONTEXT_TAIL = ("self_cos", "self_sin", "cross_cos", "cross_sin", "self_mask", "cross_mask")

# fp32: as exported; int8-dynamic: weights int8, activations quantised per call (onnxruntime
# quantize_dynamic); int8-static: weights and activations int8 with ranges calibrated on dataset frames;
# fp16: weights and compute in float16 with float32 inputs/outputs.
Precision = Literal["fp32", "int8-dynamic", "int8-static", "fp16"]
NormMode = Literal["mean_std", "identity"]


def context_names(layers: int) -> tuple[str, ...]:
    """Names of the expert-context tensors, prefix.onnx's outputs and denoise.onnx's inputs after x_t, time."""
    return tuple(f"{kind}{i}" for i in range(layers) for kind in ("k", "v")) + _CONTEXT_TAIL


@dataclass(frozen=True)
class RuntimeSpec:
    """The exported policy's interface and constants (export.json).

    camera_keys: the real cameras in model order; empty_cameras: blank slots after them (masked out).
    image_size: side S of the square model images; max_lang_tokens: the token budget L (tasks pad to it).
    max_state_dim / max_action_dim: the model's padded sizes; state_dim / action_dim: the robot's.
    chunk_size, num_steps: actions per chunk and Euler steps; n_action_steps: actions executed per chunk.
    expert_layers: how many (k, v) pairs the context holds.
    """

    format: str
    version: int
    precision: Precision
    camera_keys: tuple[str, ...]
    empty_cameras: int
    image_size: int
    max_lang_tokens: int
    truncate_task: bool
    state_dim: int
    action_dim: int
    max_state_dim: int
    max_action_dim: int
    chunk_size: int
    n_action_steps: int
    num_steps: int
    expert_layers: int
    state_norm: NormMode
    action_norm: NormMode
    norm_eps: float
    source: str

    REQUIRED_KEYS = configio.ALL_FIELDS

    def __post_init__(self) -> None:
        configio.check_fields(self)
        if self.format != FORMAT or self.version != FORMAT_VERSION:
            raise ValueError(f"not a {FORMAT} v{FORMAT_VERSION} export: format {self.format!r}, version {self.version}")
        for name in ("image_size", "max_lang_tokens", "state_dim", "action_dim", "chunk_size", "num_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.state_dim > self.max_state_dim or self.action_dim > self.max_action_dim:
            raise ValueError(
                f"state_dim/action_dim {self.state_dim}/{self.action_dim} exceed the model's "
                f"{self.max_state_dim}/{self.max_action_dim}"
            )

    @property
    def num_cameras(self) -> int:
        return len(self.camera_keys) + self.empty_cameras

    def to_json(self) -> str:
        return json.dumps(configio.to_dict(self), indent=2, sort_keys=True)

    @classmethod
    def read(cls, directory: str | Path) -> RuntimeSpec:
        """Read DIR/export.json strictly (unknown, missing or mistyped keys are errors naming the file)."""
        path = Path(directory) / EXPORT_JSON
        if not path.is_file():
            raise FileNotFoundError(f"{directory} is not an exported policy: no {EXPORT_JSON} (run `smolvla export`)")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from e
        return configio.from_dict(cls, data, source=str(path))
