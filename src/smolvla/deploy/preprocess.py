"""numpy versions of the policy's input/output transforms (smolvla.policy.transforms and .tokenizer), for
the torch-free runtime. Each matches its torch twin to float32 rounding (tests/export/test_preprocess.py).

    frames uint8[B, H, W, 3] -> /255, CHW -> resize_with_pad(S) -> *2-1  -> float32[B, 3, S, S] in [-1, 1]
    state float32[B, D]      -> (x - mean) / (std + eps) -> zero-pad to max_state_dim
    model float32[B, T, A]   -> cut to action_dim -> x * std + mean        -> raw actions
    task strings             -> + "\\n" -> tokenizer ids, right-padded to L with a mask
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

# Tried in order to find the padding id when tokenizer.json defines no padding (as the torch tokenizer).
_PAD_CANDIDATES = ("<pad>", "<|im_end|>", "<|endoftext|>", "</s>")


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


class NumpyTaskTokenizer:
    """Task strings -> (int64[B, L] ids, bool[B, L] mask), as `smolvla.policy.tokenizer.TaskTokenizer`."""

    def __init__(self, path: str | Path, max_length: int, *, truncate: bool = False) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"tokenizer file not found: {path}")
        try:
            self.tokenizer = Tokenizer.from_file(str(path))
        except Exception as e:  # tokenizers raises a bare Exception on malformed JSON
            raise ValueError(f"cannot parse tokenizer file {path}: {e}") from e
        self.max_length = max_length
        self.truncate = truncate
        self.pad_id = _find_pad_id(self.tokenizer)

    def __call__(self, tasks: list[str]) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(tasks, str) or not all(isinstance(t, str) for t in tasks):
            raise ValueError(f"tasks must be a list of str, got {type(tasks).__name__}: {tasks!r:.100}")
        texts = [t if t.endswith("\n") else t + "\n" for t in tasks]
        ids = np.full((len(tasks), self.max_length), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(tasks), self.max_length), dtype=bool)
        for i, enc in enumerate(self.tokenizer.encode_batch(texts)):
            row = enc.ids
            if len(row) > self.max_length:
                if not self.truncate:
                    raise ValueError(
                        f"task {i} is {len(row)} tokens, more than the budget of {self.max_length} "
                        f"(task: {tasks[i]!r:.80}); shorten the task or use a policy trained with a larger budget"
                    )
                row = row[: self.max_length]
            ids[i, : len(row)] = row
            mask[i, : len(row)] = True
        return ids, mask


def _find_pad_id(tokenizer: Tokenizer) -> int:
    if tokenizer.padding is not None:
        return int(tokenizer.padding["pad_id"])
    for token in _PAD_CANDIDATES:
        idx = tokenizer.token_to_id(token)
        if idx is not None:
            return idx
    return 0  # padded positions are masked out everywhere, so any valid id works
