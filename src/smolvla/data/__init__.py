"""LeRobotDataset reading (v3.0/v2.1), writing (v3.0), statistics, mixtures and task relabelling.

The names below are imported on first use (PEP 562), so that a torch-free module of this package - the
mixture file format read by training configs (`smolvla.data.mixture`), `paths` - can be imported without
pulling in torch, pyarrow and the video decoder.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LeRobotDataset": "smolvla.data.dataset",
    "VideoEncoding": "smolvla.data.encode",
    "DatasetFormatError": "smolvla.data.meta",
    "DatasetMeta": "smolvla.data.meta",
    "load_meta": "smolvla.data.meta",
    "MixtureConfig": "smolvla.data.mixture",
    "MixtureSource": "smolvla.data.mixture",
    "load_mixture": "smolvla.data.mixture",
    "RuleAnnotator": "smolvla.data.relabel",
    "VLMAnnotator": "smolvla.data.relabel",
    "relabel_dataset": "smolvla.data.relabel",
    "aggregate_stats": "smolvla.data.stats",
    "compute_episode_stats": "smolvla.data.stats",
    "DatasetWriter": "smolvla.data.writer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'smolvla.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
