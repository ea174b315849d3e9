"""The camera size `smolvla eval` renders at by default: the checkpoint's training frames, else its input."""

from __future__ import annotations

import json
from pathlib import Path

from smolvla.eval.camera_size import REMOTE_IMAGE_SIZE, CameraSize, checkpoint_camera_size, eval_camera_size
from smolvla.model.config import get_config
from smolvla.policy.config import PolicyConfig

CAMS = ("observation.images.top", "observation.images.wrist")


def write_dataset_info(root: Path, shapes: dict[str, list[int]], names=("height", "width", "channels")) -> Path:
    """A dataset's meta/info.json with only the camera features (all this lookup reads)."""
    (root / "meta").mkdir(parents=True)
    features = {k: {"dtype": "video", "shape": s, "names": list(names)} for k, s in shapes.items()}
    (root / "meta" / "info.json").write_text(json.dumps({"features": features}))
    return root


def write_run_checkpoint(run: Path, roots: list[Path], mixture: dict | None = None) -> Path:
    """<run>/checkpoints/00000010/{pretrained_model/config.json, train_config.json}, as training writes them;
    the policy's model input is 64 px (the "tiny" preset), its cameras top and wrist."""
    step = run / "checkpoints" / "00000010"
    ckpt = step / "pretrained_model"
    ckpt.mkdir(parents=True)
    config = PolicyConfig(model=get_config("tiny"), camera_keys=CAMS, n_action_steps=10)
    (ckpt / "config.json").write_text(config.to_json())
    data = {"datasets": [{"root": str(r), "weight": 1.0} for r in roots], "mixture": mixture}
    (step / "train_config.json").write_text(json.dumps({"data": data, "steps": 10}))
    return ckpt


def test_the_training_datasets_camera_size_wins_over_the_model_input(tmp_path):
    ds = write_dataset_info(tmp_path / "ds", {k: [128, 128, 3] for k in CAMS})
    ckpt = write_run_checkpoint(tmp_path / "run", [ds])
    assert checkpoint_camera_size(ckpt) == CameraSize(128, f"training dataset {ds}")
    # An explicit size wins; a remote server's policy gets the stated default.
    assert eval_camera_size(96, ckpt) == CameraSize(96, "--image-size")
    assert eval_camera_size(None, ckpt).size == 128
    assert eval_camera_size(None, None) == CameraSize(REMOTE_IMAGE_SIZE, "remote default")
    assert REMOTE_IMAGE_SIZE == 64  # what --help states


def test_axis_names_are_read_and_several_datasets_must_agree(tmp_path):
    a = write_dataset_info(tmp_path / "a", {k: [3, 96, 96] for k in CAMS}, names=("channels", "height", "width"))
    b = write_dataset_info(tmp_path / "b", {k: [96, 96, 3] for k in CAMS})
    assert checkpoint_camera_size(write_run_checkpoint(tmp_path / "r1", [a, b])) == CameraSize(
        96, f"training dataset {a} (+1)"
    )
    c = write_dataset_info(tmp_path / "c", {k: [128, 128, 3] for k in CAMS})
    fallback = CameraSize(64, "policy input size")
    assert checkpoint_camera_size(write_run_checkpoint(tmp_path / "r2", [a, c])) == fallback


def test_falls_back_to_the_policy_input_size(tmp_path):
    fallback = CameraSize(64, "policy input size")
    # A dataset that is gone, a camera the dataset lacks, a non-square camera, a mixture run, no run at all.
    assert checkpoint_camera_size(write_run_checkpoint(tmp_path / "gone", [tmp_path / "nowhere"])) == fallback
    one_cam = write_dataset_info(tmp_path / "one", {CAMS[0]: [128, 128, 3]})
    assert checkpoint_camera_size(write_run_checkpoint(tmp_path / "r1", [one_cam])) == fallback
    wide = write_dataset_info(tmp_path / "wide", {k: [96, 128, 3] for k in CAMS})
    assert checkpoint_camera_size(write_run_checkpoint(tmp_path / "r2", [wide])) == fallback
    ds = write_dataset_info(tmp_path / "ds", {k: [128, 128, 3] for k in CAMS})
    assert checkpoint_camera_size(write_run_checkpoint(tmp_path / "r3", [ds], mixture={"datasets": []})) == fallback
    lone = tmp_path / "asset"
    lone.mkdir()
    config = PolicyConfig(model=get_config("so101"), camera_keys=CAMS, n_action_steps=30)
    (lone / "config.json").write_text(config.to_json())
    assert checkpoint_camera_size(lone) == CameraSize(128, "policy input size")
