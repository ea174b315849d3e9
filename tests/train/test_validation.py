"""Bad runs fail with a clear message before any model is built or any step is computed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import smolvla.train.initialize as initialize
from smolvla.policy.testing import make_tiny_policy
from smolvla.train.config import DataConfig, DatasetSpec, InitConfig, get_train_config
from smolvla.train.loop import main

from .train_helpers import FEATURES, write_tiny_dataset


def _no_compute(monkeypatch) -> None:
    """Building or loading a policy fails the test: every check must come first."""

    def boom(*a, **k):
        raise AssertionError("a policy was built before the dataset was checked")

    monkeypatch.setattr(initialize, "SmolVLAPolicy", boom)
    monkeypatch.setattr(initialize, "load_policy", boom)


def _cfg(dataset: Path, out: Path, init: InitConfig | None = None):
    return get_train_config(
        "tiny_cpu",
        steps=2,
        batch_size=4,
        output_dir=str(out),
        data=DataConfig(datasets=(DatasetSpec(str(dataset)),)),
        init=init or InitConfig(),
    )


@pytest.fixture(scope="module")
def two_cam_checkpoint(tmp_path_factory) -> Path:
    """A saved policy expecting both cameras and 6-dim state/action."""
    path = tmp_path_factory.mktemp("ckpt") / "policy"
    make_tiny_policy(camera_keys=tuple(k for k in FEATURES if "images" in k)).save_pretrained(path)
    return path


def test_missing_camera(tmp_path, two_cam_checkpoint, monkeypatch) -> None:
    feats = {k: v for k, v in FEATURES.items() if k != "observation.images.wrist"}
    ds = write_tiny_dataset(tmp_path / "one_cam", episodes=1, features=feats)
    _no_compute(monkeypatch)
    init = InitConfig(kind="checkpoint", path=str(two_cam_checkpoint))
    with pytest.raises(ValueError, match=r"lacks camera\(s\) \['observation.images.wrist'\] that the policy needs"):
        main(_cfg(ds, tmp_path / "run", init))


def test_state_dim_mismatch(tmp_path, two_cam_checkpoint, monkeypatch) -> None:
    feats = dict(FEATURES, **{"observation.state": {"dtype": "float32", "shape": [5]}})
    ds = write_tiny_dataset(tmp_path / "state5", episodes=1, features=feats)
    _no_compute(monkeypatch)
    init = InitConfig(kind="checkpoint", path=str(two_cam_checkpoint))
    with pytest.raises(ValueError, match=r"'observation.state' has dimension 5 but the policy expects 6"):
        main(_cfg(ds, tmp_path / "run", init))


def test_missing_stats_file(tmp_path, tiny_dataset, monkeypatch) -> None:
    ds = tmp_path / "nostats"
    shutil.copytree(tiny_dataset, ds)
    (ds / "meta" / "stats.json").unlink()
    _no_compute(monkeypatch)
    with pytest.raises(FileNotFoundError, match=r"has no normalisation statistics \(.*meta/stats.json is missing\)"):
        main(_cfg(ds, tmp_path / "run"))


def test_no_dataset_given(tmp_path) -> None:
    cfg = get_train_config("tiny_cpu", output_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"no training dataset given"):
        main(cfg)


def test_init_checkpoint_dir_must_exist(tmp_path, tiny_dataset) -> None:
    init = InitConfig(kind="checkpoint", path=str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match=r"is not a policy directory: .*nope/config.json is missing"):
        main(_cfg(tiny_dataset, tmp_path / "run", init))


def test_mixture_pools_stats_and_finetunes_from_checkpoint(tmp_path, tiny_dataset, two_cam_checkpoint) -> None:
    other = write_tiny_dataset(tmp_path / "other", episodes=2, seed=5)
    cfg = get_train_config(
        "tiny_cpu",
        steps=2,
        batch_size=4,
        output_dir=str(tmp_path / "run"),
        plot_loss=False,
        freeze="expert_only",
        data=DataConfig(datasets=(DatasetSpec(str(tiny_dataset), 2.0), DatasetSpec(str(other), 1.0))),
        init=InitConfig(kind="checkpoint", path=str(two_cam_checkpoint)),
    )
    result = main(cfg)
    assert result.step == 2
    from smolvla.data.meta import load_meta
    from smolvla.policy.checkpoint import load_policy

    a, b = load_meta(tiny_dataset).stats["action"], load_meta(other).stats["action"]
    mean = (a["mean"] * a["count"] + b["mean"] * b["count"]) / (a["count"] + b["count"])
    saved = load_policy(result.checkpoint / "pretrained_model").stats.get("action", "mean")
    assert saved.numpy() == pytest.approx(mean, rel=1e-5)
