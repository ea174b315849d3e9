"""Normalisation statistics computed and aggregated the way LeRobot 0.6.1 does it.

Per feature: `min`, `max`, `mean`, `std` (population), `count` and the quantiles `q01 q10 q50 q90 q99`.
Numbers are reproduced bit-for-bit for numeric features (tests compare with the stats LeRobot wrote into
the fixtures), which matters because SmolVLA normalises state and action with `mean`/`std`:

* inputs are promoted to at least float32 (uint8 pixels -> float32, int64 -> float64, float32 stays);
* `std = sqrt(max(0, mean(x^2) - mean(x)^2))` (not numpy's two-pass std, hence the float32 rounding);
* quantiles come from a 5000-bin histogram over `[min - 1e-10, max + 1e-10]`, linearly interpolated
  inside the bin that reaches `q * count`;
* cameras: up to `sample_frame_indices(n)` frames, strided to ~150 px when larger than 300 px, stats per
  channel over (frames, H, W), divided by 255, shaped (3, 1, 1); `count` = number of sampled frames;
* dataset stats = count-weighted aggregation of episode stats (pooled variance; quantiles are the
  count-weighted mean of episode quantiles, as in 0.6.1 - not true global quantiles).
"""

from __future__ import annotations

import numpy as np

QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
QUANTILE_KEYS = tuple(f"q{round(q * 100):02d}" for q in QUANTILES)
NUM_BINS = 5000


def _histogram_quantile(values: np.ndarray, vmin, vmax, count: int) -> list:
    """Quantiles of one column from a NUM_BINS histogram (interpolated inside the crossing bin)."""
    edges = np.linspace(vmin - 1e-10, vmax + 1e-10, NUM_BINS + 1)
    hist = np.zeros(NUM_BINS) + np.histogram(values, bins=edges)[0]
    cumsum = np.cumsum(hist)
    out = []
    for q in QUANTILES:
        target = q * count
        i = int(np.searchsorted(cumsum, target))
        if i == 0:
            out.append(edges[0])
        elif i >= len(cumsum):
            out.append(edges[-1])
        elif cumsum[i] - cumsum[i - 1] == 0:
            out.append(edges[i])
        else:
            frac = (target - cumsum[i - 1]) / (cumsum[i] - cumsum[i - 1])
            out.append(edges[i] + frac * (edges[i + 1] - edges[i]))
    return out


def vector_stats(rows: np.ndarray) -> dict[str, np.ndarray]:
    """Stats over axis 0 of `rows` ([N] or [N, D] numeric); returns arrays of shape [1] or [D]."""
    x = np.asarray(rows)
    x2 = x.reshape(len(x), -1) if x.ndim > 1 else x.reshape(-1, 1)
    x2 = x2.astype(np.result_type(x2.dtype, np.float32), copy=False)
    n = x2.shape[0]
    if n == 0:
        raise ValueError("cannot compute statistics of an empty array")
    mean = np.mean(x2, axis=0)
    stats = {"min": np.min(x2, axis=0), "max": np.max(x2, axis=0), "mean": mean}
    if n < 2:
        stats["std"] = np.std(x2, axis=0)
        quant = [mean.copy() for _ in QUANTILES]
    else:
        stats["std"] = np.sqrt(np.maximum(0, np.mean(x2**2, axis=0) - mean**2))
        per_col = [_histogram_quantile(x2[:, j], stats["min"][j], stats["max"][j], n) for j in range(x2.shape[1])]
        quant = [np.array([col[k] for col in per_col]) for k in range(len(QUANTILES))]
    stats["count"] = np.array([n])  # key order as LeRobot's (it fixes the episodes parquet column order)
    stats.update(dict(zip(QUANTILE_KEYS, quant, strict=True)))
    return stats


def sample_frame_indices(n: int) -> np.ndarray:
    """Evenly spaced frame indices used for camera stats: all if n < 100, else max(100, min(n**0.75, 10000))."""
    num = n if n < 100 else max(100, min(int(n**0.75), 10_000))
    return np.round(np.linspace(0, n - 1, num)).astype(int)


def downsample_for_stats(frame_chw: np.ndarray) -> np.ndarray:
    """Stride frames larger than 300 px on a side down to ~150 px (as LeRobot does before image stats)."""
    _, h, w = frame_chw.shape
    if max(h, w) < 300:
        return frame_chw
    step = int(w / 150) if w > h else int(h / 150)
    return frame_chw[:, ::step, ::step]


def image_stats(frames_chw: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel stats of uint8[N, 3, H, W] frames (already sampled/downsampled) in [0, 1], shape (3, 1, 1)."""
    if frames_chw.ndim != 4 or frames_chw.dtype != np.uint8:
        raise ValueError(f"image_stats expects uint8[N, C, H, W], got {frames_chw.dtype}{list(frames_chw.shape)}")
    n, c = frames_chw.shape[:2]
    pixels = frames_chw.transpose(0, 2, 3, 1).reshape(-1, c)
    stats = vector_stats(pixels)
    return {k: np.array([n]) if k == "count" else (v / 255.0).reshape(c, 1, 1) for k, v in stats.items()}


def episode_image_stats(frames_hwc: np.ndarray) -> dict[str, np.ndarray]:
    """Camera stats of one episode from its uint8[T, H, W, 3] frames (sampling + downsampling included)."""
    idx = sample_frame_indices(len(frames_hwc))
    sampled = np.stack([downsample_for_stats(np.ascontiguousarray(frames_hwc[i].transpose(2, 0, 1))) for i in idx])
    return image_stats(sampled)


def compute_episode_stats(columns: dict[str, np.ndarray], camera_keys: tuple[str, ...] = ()) -> dict:
    """Stats of one episode: `columns` maps feature -> array[T, ...] (cameras: uint8[T, H, W, 3]).

    The default columns should be passed as LeRobot's writer holds them (timestamp float64 =
    frame_index / fps, indices int64) to reproduce its numbers exactly.
    """
    return {key: episode_image_stats(arr) if key in camera_keys else vector_stats(arr) for key, arr in columns.items()}


def aggregate_feature_stats(per_episode: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Combine one feature's stats from several episodes (count-weighted, pooled variance)."""
    counts = np.stack([np.asarray(s["count"]) for s in per_episode])  # [E, 1]
    total = counts.sum(axis=0)
    means = np.stack([np.asarray(s["mean"]) for s in per_episode])
    weights = counts.reshape(counts.shape + (1,) * (means.ndim - counts.ndim))
    mean = (means * weights).sum(axis=0) / total
    var = ((np.stack([np.asarray(s["std"]) for s in per_episode]) ** 2 + (means - mean) ** 2) * weights).sum(
        axis=0
    ) / total
    out = {
        "min": np.min(np.stack([np.asarray(s["min"]) for s in per_episode]), axis=0),
        "max": np.max(np.stack([np.asarray(s["max"]) for s in per_episode]), axis=0),
        "mean": mean,
        "std": np.sqrt(var),
        "count": total,
    }
    for q in QUANTILE_KEYS:
        if all(q in s for s in per_episode):
            out[q] = (np.stack([np.asarray(s[q]) for s in per_episode]) * weights).sum(axis=0) / total
    return out


def aggregate_stats(per_episode: list[dict[str, dict]]) -> dict[str, dict[str, np.ndarray]]:
    """Dataset stats from a list of per-episode stats (union of their features)."""
    if not per_episode:
        raise ValueError("aggregate_stats needs at least one episode's stats")
    keys = list(dict.fromkeys(k for ep in per_episode for k in ep))
    return {k: aggregate_feature_stats([ep[k] for ep in per_episode if k in ep]) for k in keys}


def stats_to_json(stats: dict[str, dict[str, np.ndarray]]) -> dict:
    """Plain-JSON form of stats (nested lists), as stored in meta/stats.json."""
    return {k: {s: np.asarray(v).tolist() for s, v in feat.items()} for k, feat in stats.items()}
