"""The default precision follows the CPU's real bf16 support (fake flags and cpuinfo files)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from smolvla.policy.precision import cpu_flags, fastest_cpu_precision, resolve_dtype

ZEN4 = frozenset({"avx2", "avx512f", "avx512_bf16", "fma"})
SAPPHIRE_RAPIDS = frozenset({"avx2", "avx512f", "amx_bf16", "amx_tile"})
AVX2_ONLY = frozenset({"avx", "avx2", "fma"})
AVX512_NO_BF16 = frozenset({"avx2", "avx512f", "avx512_vnni"})


@pytest.mark.parametrize(
    ("flags", "want"),
    [(ZEN4, "bf16"), (SAPPHIRE_RAPIDS, "bf16"), (AVX2_ONLY, "fp32"), (AVX512_NO_BF16, "fp32"), (frozenset(), "fp32")],
)
def test_fastest_cpu_precision(flags: frozenset[str], want: str) -> None:
    assert fastest_cpu_precision(flags) == want


def test_resolve_dtype_auto_and_explicit() -> None:
    assert resolve_dtype("auto", "cpu", flags=ZEN4) is torch.bfloat16
    assert resolve_dtype("auto", "cpu", flags=AVX2_ONLY) is torch.float32
    assert resolve_dtype("fp32", "cpu", flags=ZEN4) is torch.float32  # an explicit choice wins
    assert resolve_dtype("bf16", "cpu", flags=AVX2_ONLY) is torch.bfloat16
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16, got 'fp16'"):
        resolve_dtype("fp16")


def test_cpu_flags_reads_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\n")
    assert cpu_flags(info) == {"fpu", "avx2", "avx512_bf16"}
    info.write_text("Processor\t: AArch64\nFeatures\t: fp asimd bf16\n")  # ARM spells it Features
    assert cpu_flags(info) == {"fp", "asimd", "bf16"}
    assert cpu_flags(tmp_path / "absent") == frozenset()


def test_serve_torch_engine_loads_in_the_chosen_precision(tmp_path: Path) -> None:
    from smolvla.cli.serve import torch_runner
    from smolvla.policy.testing import make_tiny_policy

    make_tiny_policy().save_pretrained(tmp_path / "p")
    for precision, want in (("bf16", torch.bfloat16), ("fp32", torch.float32), ("auto", resolve_dtype("auto"))):
        runner = torch_runner(tmp_path / "p", threads=None, device="cpu", precision=precision, actions_per_chunk=None)
        assert runner.policy.dtype == want
