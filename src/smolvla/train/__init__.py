"""Training: configs and presets, the loop (`main(cfg)`), checkpoints, metrics.

    from smolvla.train import get_train_config, main
    main(get_train_config("tiny_cpu", data=DataConfig(datasets=(DatasetSpec("path/to/dataset"),))))

`main` and the loop pieces are imported lazily so that reading a config does not import torch.
"""

from __future__ import annotations

from typing import Any

from smolvla.train.config import (
    DataConfig,
    DatasetSpec,
    InitConfig,
    OptimizerConfig,
    ScheduleConfig,
    TrainConfig,
    get_train_config,
)

__all__ = [
    "DataConfig",
    "DatasetSpec",
    "InitConfig",
    "OptimizerConfig",
    "ScheduleConfig",
    "TrainConfig",
    "get_train_config",
    "main",
]


def __getattr__(name: str) -> Any:
    if name == "main":
        from smolvla.train.loop import main

        return main
    raise AttributeError(f"module 'smolvla.train' has no attribute {name!r}")
