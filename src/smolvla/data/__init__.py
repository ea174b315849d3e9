"""LeRobotDataset reading (v3.0/v2.1), writing (v3.0), statistics, mixtures and task relabelling."""

from smolvla.data.dataset import LeRobotDataset
from smolvla.data.encode import VideoEncoding
from smolvla.data.meta import DatasetFormatError, DatasetMeta, load_meta
from smolvla.data.mixture import MixtureConfig, MixtureDataset, MixtureSampler, MixtureSource
from smolvla.data.relabel import RuleAnnotator, VLMAnnotator, relabel_dataset
from smolvla.data.stats import aggregate_stats, compute_episode_stats
from smolvla.data.writer import DatasetWriter

__all__ = [
    "DatasetFormatError",
    "DatasetMeta",
    "DatasetWriter",
    "LeRobotDataset",
    "MixtureConfig",
    "MixtureDataset",
    "MixtureSampler",
    "MixtureSource",
    "RuleAnnotator",
    "VLMAnnotator",
    "VideoEncoding",
    "aggregate_stats",
    "compute_episode_stats",
    "load_meta",
    "relabel_dataset",
]
