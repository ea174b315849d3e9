"""NormStats: strict key matching, shapes, missing stats, non-finite values."""

from __future__ import annotations

import pytest
import torch

from smolvla.policy.normalize import NormStats

DIMS = {"observation.state": 2, "action": 3}
MODES = {"observation.state": "mean_std", "action": "mean_std"}


def _flat() -> dict[str, torch.Tensor]:
    return {
        "observation.state.mean": torch.tensor([1.0, 2.0]),
        "observation.state.std": torch.tensor([0.5, 0.5]),
        "action.mean": torch.zeros(3),
        "action.std": torch.ones(3),
        "action.min": torch.zeros(3),  # extra stat kinds of a known feature are allowed and not kept
    }


def test_round_trip_and_extra_stat_kinds_dropped() -> None:
    stats = NormStats.from_flat(_flat(), DIMS, MODES)
    assert sorted(stats.to_flat()) == ["action.mean", "action.std", "observation.state.mean", "observation.state.std"]
    assert torch.equal(stats.get("observation.state", "mean"), torch.tensor([1.0, 2.0]))
    assert NormStats.from_flat(stats.to_flat(), DIMS, MODES).allclose(stats)


def test_dataset_prefixed_keys_are_an_error_naming_them() -> None:
    flat = _flat()
    flat["so100.buffer.action.mean"] = flat.pop("action.mean")
    with pytest.raises(ValueError, match=r"unexpected normalisation stats keys \['so100.buffer.action.mean'\]"):
        NormStats.from_flat(flat, DIMS, MODES)


def test_missing_stats_for_a_feature() -> None:
    flat = _flat()
    del flat["action.std"], flat["observation.state.mean"]
    with pytest.raises(ValueError, match=r"missing observation.state.mean; missing action.std"):
        NormStats.from_flat(flat, DIMS, MODES, source="x.safetensors")


def test_identity_mode_needs_no_stats() -> None:
    flat = {k: v for k, v in _flat().items() if k.startswith("observation.state")}
    stats = NormStats.from_flat(flat, DIMS, {**MODES, "action": "identity"})
    assert sorted(stats.stats) == ["observation.state"]


def test_wrong_shape_and_infinite_stats() -> None:
    flat = _flat() | {"action.mean": torch.zeros(4)}
    with pytest.raises(ValueError, match=r"action.mean has shape \(4,\), expected \(3,\)"):
        NormStats.from_flat(flat, DIMS, MODES)
    flat = _flat() | {"action.std": torch.full((3,), float("inf"))}
    with pytest.raises(ValueError, match="action.std has non-finite values"):
        NormStats.from_flat(flat, DIMS, MODES)


def test_ignored_features_pass_and_get_names_missing() -> None:
    flat = _flat() | {"observation.images.top.mean": torch.zeros(3, 1, 1)}
    stats = NormStats.from_flat(flat, DIMS, MODES, ignore_features=("observation.images.top",))
    with pytest.raises(KeyError, match="missing observation.images.top.mean"):
        stats.get("observation.images.top", "mean")
