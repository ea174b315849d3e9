"""The camera size a policy is evaluated at: by default the size of the frames it was trained on.

A policy trained on 128 px recordings must see 128 px renders, resized to its input exactly as its training
frames were; a 64 px render upscaled to the same input is another picture. The size comes from, in order:

1. `--image-size`, when given;
2. the camera shapes in `meta/info.json` of the datasets the checkpoint was trained on, found through the
   `train_config.json` that a training run writes beside each checkpoint
   (`<run>/checkpoints/<step>/{pretrained_model, train_config.json}`), when every dataset is still on disk
   and all of them record one square size for every camera of the policy;
3. the policy's own input size (`PolicyConfig.image_size`), e.g. for a committed policy without its run.

With `--remote` there is no local checkpoint to read: `REMOTE_IMAGE_SIZE` unless `--image-size` is given.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from smolvla.data.meta import read_json
from smolvla.policy.checkpoint import load_policy_config

logger = logging.getLogger(__name__)

# Camera size of `smolvla eval --remote` when --image-size is not given (the server's checkpoint is not here).
REMOTE_IMAGE_SIZE = 64
TRAIN_CONFIG_FILE = "train_config.json"


@dataclass(frozen=True)
class CameraSize:
    """size: square camera resolution in pixels; source: where it came from (recorded in the eval report)."""

    size: int
    source: str


def eval_camera_size(image_size: int | None, checkpoint: Path | None) -> CameraSize:
    """The camera size for evaluating `checkpoint` (None: a remote server's policy), see the module doc."""
    if image_size is not None:
        return CameraSize(image_size, "--image-size")
    if checkpoint is None:
        return CameraSize(REMOTE_IMAGE_SIZE, "remote default")
    return checkpoint_camera_size(checkpoint)


def checkpoint_camera_size(checkpoint: Path) -> CameraSize:
    """The size of the frames `checkpoint` was trained on (its datasets' cameras), else its input size."""
    config = load_policy_config(checkpoint)
    found = training_camera_size(checkpoint, config.camera_keys)
    if found is not None:
        return found
    return CameraSize(config.image_size, "policy input size")


def training_camera_size(checkpoint: Path, camera_keys: tuple[str, ...]) -> CameraSize | None:
    """The one square size every training dataset of `checkpoint` records for `camera_keys`; None (with the
    reason logged) when there is no run beside the checkpoint, a dataset is gone, or the sizes disagree."""
    train_config = Path(checkpoint).parent / TRAIN_CONFIG_FILE
    if not train_config.is_file():
        return None
    try:
        data = json.loads(train_config.read_text()).get("data", {})
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as e:
        logger.info("camera size: cannot read %s (%s); using the policy's input size", train_config, e)
        return None
    if data.get("mixture") is not None:  # mixture datasets have their own camera names and sizes
        return None
    roots = [spec.get("root") for spec in data.get("datasets") or []]
    sizes: set[int] = set()
    for root in roots:
        info_path = Path(str(root)) / "meta" / "info.json"
        if not info_path.is_file():
            logger.info("camera size: training dataset %s is not here; using the policy's input size", root)
            return None
        features = read_json(info_path).get("features", {})
        for key in camera_keys:
            size = _square_size(features.get(key))
            if size is None:
                logger.info("camera size: %s has no square camera %r; using the policy's input size", info_path, key)
                return None
            sizes.add(size)
    if len(sizes) != 1:
        if sizes:
            logger.info("camera size: training datasets disagree (%s); using the policy's input size", sorted(sizes))
        return None
    return CameraSize(sizes.pop(), f"training dataset {roots[0]}" + (f" (+{len(roots) - 1})" if len(roots) > 1 else ""))


def _square_size(feature: dict | None) -> int | None:
    """H of a camera feature whose shape is square (H = W), reading its axis names when it has them
    (LeRobot writes [H, W, C] with names ["height", "width", "channels"]); None otherwise."""
    if not isinstance(feature, dict) or len(feature.get("shape") or []) != 3:
        return None
    shape, names = list(feature["shape"]), feature.get("names") or []
    if isinstance(names, list) and "height" in names and "width" in names:
        h, w = shape[names.index("height")], shape[names.index("width")]
    else:
        h, w = shape[0], shape[1]
    return int(h) if h == w else None
