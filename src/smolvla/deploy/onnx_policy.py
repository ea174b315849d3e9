"""A torch-free SmolVLA policy on ONNX Runtime: numpy preprocessing, the prefix graph once per chunk, the
denoising graph `num_steps` times (Euler, t = 1 noise -> t = 0), numpy unnormalisation. With real-time
chunking (an export with guide.onnx), guided elements take guide.onnx's velocity and guidance instead.

Reads a directory written by `smolvla export` (layout in `smolvla.deploy.manifest`). Needs numpy,
onnxruntime, tokenizers and safetensors only (the `onnx-serve` extra), so it runs where torch is absent.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort
from safetensors.numpy import load_file

from smolvla.deploy.manifest import (
    DENOISE_ONNX,
    GUIDANCE,
    GUIDE_ONNX,
    GUIDE_STEP_INPUTS,
    PREFIX_ONNX,
    STATS_FILE,
    TOKENIZER_FILE,
    VELOCITY,
    RuntimeSpec,
    context_names,
)
from smolvla.deploy.preprocess import (
    frames_to_unit,
    normalize,
    pad_last_dim,
    resize_with_pad,
    unnormalize,
)
from smolvla.deploy.rtc import PrefixArrays, guided_euler
from smolvla.task_tokens import ArrayTaskTokenizer
from smolvla.types import ACTION, OBS_STATE

log = logging.getLogger(__name__)


def euler_times(num_steps: int) -> list[float]:
    """t_k = 1 + k * dt (k < num_steps, dt = -1/num_steps) computed in double and rounded to float32, as
    `smolvla.model.flow.euler_times` (and LeRobot 0.6.1) do."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    dt = -1.0 / num_steps
    return [float(np.float32(1.0 + k * dt)) for k in range(num_steps)]


class OnnxPolicy:
    """An exported SmolVLA policy. `config` is its `RuntimeSpec` (camera_keys, state_dim, action_dim,
    chunk_size, n_action_steps...); `predict` takes wire arrays and returns raw actions."""

    def __init__(self, directory: str | Path, *, threads: int | None = None) -> None:
        directory = Path(directory)
        self.directory = directory
        self.config = RuntimeSpec.read(directory)
        cfg = self.config
        self.tokenizer = ArrayTaskTokenizer.from_file(
            directory / TOKENIZER_FILE, cfg.max_lang_tokens, truncate=cfg.truncate_task
        )
        self._stats = _read_stats(directory / STATS_FILE, cfg)
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        self._prefix = ort.InferenceSession(str(directory / PREFIX_ONNX), options, providers=providers)
        self._denoise = ort.InferenceSession(str(directory / DENOISE_ONNX), options, providers=providers)
        guide = directory / GUIDE_ONNX
        self._guide = ort.InferenceSession(str(guide), options, providers=providers) if guide.is_file() else None
        self._context = context_names(cfg.expert_layers)
        log.info("loaded %s (%s) from %s", cfg.source, cfg.precision, directory)

    @property
    def supports_rtc(self) -> bool:
        """Real-time chunking needs guide.onnx (exported unless `export_policy(..., rtc=False)`)."""
        return self._guide is not None

    def check_task(self, task: str) -> None:
        """Raise ValueError (saying why) if `task` does not fit the token budget."""
        self.tokenizer([task])

    # ------------------------------------------------------------------------------------------ inference
    def predict(
        self,
        images: dict[str, np.ndarray],
        state: np.ndarray,
        tasks: list[str],
        noise: np.ndarray | None = None,
        rtc: PrefixArrays | None = None,
    ) -> np.ndarray:
        """images uint8[B, H, W, 3] per camera key, state float32[B, state_dim] raw, B task strings
        -> float32[B, chunk_size, action_dim] raw actions.

        noise: optional float32[B, chunk_size, max_action_dim], the t = 1 start of the flow.
        rtc: real-time chunking inputs (prefix float32[B, chunk_size, action_dim] raw, weights); needs
            `supports_rtc`.
        """
        inputs = self.model_inputs(images, state, tasks)
        chunk = self.sample(inputs, noise, rtc)[..., : self.config.action_dim]
        return self._out(chunk)

    def model_inputs(self, images: dict[str, np.ndarray], state: np.ndarray, tasks: list[str]) -> dict[str, np.ndarray]:
        """Wire arrays -> the prefix graph's inputs (see smolvla.deploy.manifest)."""
        cfg = self.config
        state = np.asarray(state)
        if state.ndim != 2 or state.shape[1] != cfg.state_dim or not np.issubdtype(state.dtype, np.floating):
            raise ValueError(f"{OBS_STATE} must be float32[B, {cfg.state_dim}], got {state.dtype}{list(state.shape)}")
        if not np.isfinite(state).all():
            raise ValueError(f"{OBS_STATE} contains NaN or inf")
        b = state.shape[0]
        if set(images) != set(cfg.camera_keys):
            raise ValueError(f"camera keys mismatch: expected {sorted(cfg.camera_keys)}, got {sorted(images)}")
        size = cfg.image_size
        slots = []
        for key in cfg.camera_keys:
            unit = frames_to_unit(images[key])
            if unit.shape[0] != b:
                raise ValueError(f"{key} has {unit.shape[0]} frames for a batch of {b}")
            slots.append(resize_with_pad(unit, size) * np.float32(2.0) - np.float32(1.0))
        slots += [np.full((b, 3, size, size), -1.0, dtype=np.float32)] * cfg.empty_cameras
        masks = np.array([True] * len(cfg.camera_keys) + [False] * cfg.empty_cameras)
        tasks = list(tasks)
        if len(tasks) != b:
            raise ValueError(f"{len(tasks)} tasks for a batch of {b}")
        tokens, lang_masks = self.tokenizer(tasks)
        norm_state = state.astype(np.float32)
        if cfg.state_norm == "mean_std":
            norm_state = normalize(norm_state, *self._stats[OBS_STATE], cfg.norm_eps)
        return {
            "images": np.stack(slots, axis=1),
            "image_masks": np.broadcast_to(masks, (b, len(masks))).copy(),
            "lang_tokens": tokens,
            "lang_masks": lang_masks,
            "state": pad_last_dim(norm_state, cfg.max_state_dim),
        }

    def sample(
        self, inputs: dict[str, np.ndarray], noise: np.ndarray | None = None, rtc: PrefixArrays | None = None
    ) -> np.ndarray:
        """Prefix once, then Euler from t = 1 to 0: -> float32[B, chunk_size, max_action_dim], normalised."""
        cfg = self.config
        b = inputs["state"].shape[0]
        shape = (b, cfg.chunk_size, cfg.max_action_dim)
        if noise is None:
            noise = np.random.default_rng().standard_normal(shape, dtype=np.float32)
        elif tuple(noise.shape) != shape:
            raise ValueError(f"noise must be float32{list(shape)}, got {list(noise.shape)}")
        context = self.context(inputs)
        if rtc is not None:
            return self._sample_rtc(noise, context, rtc)
        dt = np.float32(-1.0 / cfg.num_steps)
        x = noise.astype(np.float32)
        for t in euler_times(cfg.num_steps):
            x = x + dt * self.velocity(x, np.full((b,), t, dtype=np.float32), context)
        return x

    def context(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The prefix graph: model inputs -> the expert context {name: array} (once per chunk)."""
        return dict(zip(self._context, self._prefix.run(list(self._context), inputs), strict=True))

    def velocity(self, x_t: np.ndarray, time: np.ndarray, context: dict[str, np.ndarray]) -> np.ndarray:
        """The denoising graph: x_t float32[B, S, A], time float32[B] -> velocity float32[B, S, A]."""
        return self._denoise.run([VELOCITY], {"x_t": x_t, "time": time, **context})[0]

    def _sample_rtc(self, noise: np.ndarray, context: dict[str, np.ndarray], rtc: PrefixArrays) -> np.ndarray:
        """Guided Euler (smolvla.deploy.rtc.guided_euler) against the prefix in model units."""
        cfg = self.config
        if self._guide is None:
            raise ValueError(f"{self.directory} has no {GUIDE_ONNX}: export it with RTC to serve real-time chunking")
        want = (noise.shape[0], cfg.chunk_size, cfg.action_dim)
        if tuple(rtc.prefix.shape) != want or tuple(rtc.weights.shape) != want[:2]:
            raise ValueError(f"RTC prefix must be float32{list(want)}, got {list(rtc.prefix.shape)}")
        # The policy's action input chain (normalise, zero-pad to max_action_dim), as the torch RTCGuide uses.
        target = rtc.prefix.astype(np.float32)
        if cfg.action_norm == "mean_std":
            target = normalize(target, *self._stats[ACTION], cfg.norm_eps)
        target = pad_last_dim(target, cfg.max_action_dim)
        weights = rtc.model_weights(cfg.max_action_dim)
        guide_names = [VELOCITY, GUIDANCE]

        def velocity(rows: list[int], x: np.ndarray, t: np.ndarray) -> np.ndarray:
            return self.velocity(x, t, {k: v[rows] for k, v in context.items()})

        def guide(row: int, x: np.ndarray, t: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
            one = {k: v[row : row + 1] for k, v in context.items()}  # guide.onnx is traced at batch 1
            feeds = dict(zip(GUIDE_STEP_INPUTS, (x, t, y, w), strict=True))
            return tuple(self._guide.run(guide_names, {**feeds, **one}))

        return guided_euler(
            velocity,
            guide,
            noise,
            euler_times(cfg.num_steps),
            target,
            weights,
            rtc.max_guidance_weight,
        )

    def _out(self, chunk: np.ndarray) -> np.ndarray:
        if self.config.action_norm == "mean_std":
            chunk = unnormalize(chunk, *self._stats[ACTION])
        return np.ascontiguousarray(chunk, dtype=np.float32)


def _read_stats(path: Path, cfg: RuntimeSpec) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{feature: (mean, std)} float32[D] for the mean_std-normalised features, checked against the spec."""
    if not path.is_file():
        raise FileNotFoundError(f"normalisation stats not found: {path}")
    flat = load_file(str(path))
    out = {}
    for feature, mode, dim in ((OBS_STATE, cfg.state_norm, cfg.state_dim), (ACTION, cfg.action_norm, cfg.action_dim)):
        if mode != "mean_std":
            continue
        pair = []
        for stat in ("mean", "std"):
            value = flat.get(f"{feature}.{stat}")
            if value is None or value.shape != (dim,) or not np.isfinite(value).all():
                got = "missing" if value is None else f"{value.dtype}{list(value.shape)}"
                raise ValueError(f"{path}: {feature}.{stat} must be finite float32[{dim}], got {got}")
            pair.append(value.astype(np.float32))
        out[feature] = (pair[0], pair[1])
    return out
