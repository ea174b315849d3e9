"""Where training runs: one CPU/GPU process, or several processes through `accelerate`.

`Runtime` hides the difference from the loop: device, rank/world size, wrapping the trainable module
(DistributedDataParallel under `accelerate launch`), backward, gradient clipping and bf16 autocast.
On a single process the accelerate path does the same arithmetic as the plain one (tested on CPU).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from smolvla.train.config import TrainConfig


@dataclass
class Runtime:
    """The process's view of the run. `accelerator` is None on the plain single-process path."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    accelerator: Any | None = None
    autocast_dtype: torch.dtype | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def prepare(self, module: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[nn.Module, Any]:
        """Move to the device and, with accelerate, wrap for data parallelism."""
        module = module.to(self.device)
        if self.accelerator is None:
            return module, optimizer
        return self.accelerator.prepare(module, optimizer)

    def backward(self, loss: torch.Tensor) -> None:
        if self.accelerator is None:
            loss.backward()
        else:
            self.accelerator.backward(loss)

    def clip_grad_norm(self, params: list[nn.Parameter], max_norm: float) -> torch.Tensor:
        """Clip in place; returns the total norm before clipping (float32[] tensor)."""
        if self.accelerator is None:
            return torch.nn.utils.clip_grad_norm_(params, max_norm)
        return self.accelerator.clip_grad_norm_(params, max_norm)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        if self.autocast_dtype is None:
            yield
        else:
            with torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype):
                yield

    def barrier(self) -> None:
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()


def make_runtime(cfg: TrainConfig) -> Runtime:
    """Build the runtime; a CUDA device that is not there is an error before anything is loaded."""
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={cfg.device!r} requested but CUDA is not available; use device='cpu'")
    if cfg.device not in ("cpu",) and not cfg.device.startswith(("cuda", "mps")):
        raise ValueError(f"unknown device {cfg.device!r}; expected 'cpu', 'cuda', 'cuda:N' or 'mps'")
    autocast = torch.bfloat16 if cfg.mixed_precision == "bf16" else None
    if cfg.backend == "single":
        return Runtime(device=torch.device(cfg.device), autocast_dtype=autocast)
    from accelerate import Accelerator

    # Autocast stays ours (not accelerate's mixed_precision) so both paths use the same bf16 region.
    acc = Accelerator(cpu=cfg.device == "cpu", mixed_precision="no")
    return Runtime(
        device=acc.device,
        rank=acc.process_index,
        world_size=acc.num_processes,
        accelerator=acc,
        autocast_dtype=autocast,
    )
