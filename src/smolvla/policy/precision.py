"""The compute dtype a policy runs in by default: the fastest one the hardware really has.

On a CPU, bfloat16 matmuls are fast only with native instructions (AVX512-BF16 or AMX-BF16): there the
full-size chunk takes about half the float32 time, while a CPU without them emulates bf16 and is several
times slower than float32. So "auto" picks bf16 only when /proc/cpuinfo lists one of those flags. On CUDA,
bf16 where the device supports it. The action error bf16 costs is measured in docs/results.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch

Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
# CPU flags (as /proc/cpuinfo spells them) of native bf16 matmuls.
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The first CPU's feature flags; empty where there is no /proc/cpuinfo (macOS, Windows)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def fastest_cpu_precision(flags: frozenset[str]) -> Literal["fp32", "bf16"]:
    """bf16 with native bf16 matmuls (`flags` has AVX512-BF16 or AMX-BF16), float32 otherwise."""
    return "bf16" if flags & NATIVE_BF16_FLAGS else "fp32"


def resolve_dtype(
    precision: str, device: str | torch.device = "cpu", flags: frozenset[str] | None = None
) -> torch.dtype:
    """The torch dtype for `precision` ("auto", "fp32" or "bf16") on `device`; "auto" reads the CPU's flags
    (or `flags`, for tests) on a CPU and asks CUDA whether it supports bf16 on a GPU."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return _DTYPES[precision]
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if kind == "cpu":
        return _DTYPES[fastest_cpu_precision(cpu_flags() if flags is None else flags)]
    return torch.float32
