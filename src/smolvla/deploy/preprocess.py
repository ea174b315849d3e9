"""numpy versions of the policy's input/output transforms (smolvla.policy.transforms and .tokenizer), for
the torch-free runtime. Each matches its torch twin to float32 rounding (tests/export/test_preprocess.py).

    frames uint8[B, H, W, 3] -> /255, CHW -> resize_with_pad(S) -> *2-1  -> float32[B, 3, S, S] in [-1, 1]
    state float32[B, D]      -> (x - mean) / (std + eps) -> zero-pad to max_state_dim
    model float32[B, T, A]   -> cut to action_dim -> x * std + mean        -> raw actions
    task strings             -> smolvla.task_tokens.ArrayTaskTokenizer (shared with the torch policy)
"""

from __future__ import annotations

import numpy as np


def frames_to_unit(frames: np.ndarray) -> np.ndarray:
    """uint8[B, H, W, 3] (HWC, RGB) -> float32[B, 3, H, W] in [0, 1]."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"camera frames must be uint8[B, H, W, 3], got {frames.dtype}{list(frames.shape)}")
    return np.ascontiguousarray(frames.transpose(0, 3, 1, 2)).astype(np.float32) / np.float32(255.0)


def _linear_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of bilinear resampling with align_corners=False (torch's half-pixel rule):
    src = (dst + 0.5) * in/out - 0.5 clamped at 0, i1 = min(i0 + 1, in - 1). Returns (i0, i1, w1) with w1
    float32[out] the weight of i1."""
    scale = np.float32(in_size) / np.float32(out_size)
    src = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    src = np.maximum(src, np.float32(0.0))
    i0 = src.astype(np.int64)
    i1 = np.minimum(i0 + 1, in_size - 1)
    return i0, i1, (src - i0.astype(np.float32)).astype(np.float32)


def resize_with_pad(images: np.ndarray, size: int) -> np.ndarray:
    """float32[B, C, H, W] -> float32[B, C, size, size]: LeRobot's SmolVLA resize (scale max(H, W)/size,
    sides truncated with int(), bilinear without antialiasing), then zero padding on the left and top."""
    if images.ndim != 4:
        raise ValueError(f"resize_with_pad expects float[B, C, H, W], got shape {tuple(images.shape)}")
    height, width = images.shape[-2:]
    ratio = max(width / size, height / size)
    new_h, new_w = int(height / ratio), int(width / ratio)
    out = images
    if new_w != width or new_h != height:
        # Width first, then height: the order of torch's upsample_bilinear2d CPU kernel.
        c0, c1, cw = _linear_taps(width, new_w)
        out = out[..., c0] * (np.float32(1.0) - cw) + out[..., c1] * cw
        r0, r1, rw = _linear_taps(height, new_h)
        rw = rw[:, None]
        out = out[..., r0, :] * (np.float32(1.0) - rw) + out[..., r1, :] * rw
    padded = np.zeros((*images.shape[:2], size, size), dtype=np.float32)
    padded[..., size - new_h :, size - new_w :] = out
    return padded


def normalize(x: np.ndarray, mean: np.ndarray, std: np.ndarray, eps: float) -> np.ndarray:
    """(x - mean) / (std + eps) over the last dimension, float32."""
    return ((x - mean) / (std + np.float32(eps))).astype(np.float32)


def unnormalize(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """x * std + mean over the last dimension, float32 (LeRobot's inverse, without the eps)."""
    return (x * std + mean).astype(np.float32)


def pad_last_dim(x: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad the last dimension up to `size`."""
    pad = size - x.shape[-1]
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, pad)]) if pad > 0 else x
