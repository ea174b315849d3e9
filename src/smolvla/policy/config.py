"""Policy configuration: which robot inputs feed the model and how they are normalised.

`PolicyConfig` wraps the architecture (`ModelConfig`) with the robot-facing facts: camera keys, state and
action sizes, how many actions of a chunk are executed, and the normalisation mode of each feature. It is
frozen and round-trips through JSON (`to_json` / `from_json`, via `configio`), which is how checkpoints
store it; read from a file, the fields that fix the model and the robot interface must be present.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from smolvla import configio
from smolvla.model.config import ModelConfig
from smolvla.types import ACTION, OBS_IMAGES_PREFIX, OBS_STATE

# "mean_std": (x - mean) / (std + eps); "identity": passed through unchanged. Images are always identity
# (they are scaled to [-1, 1] by the image transforms instead), as in LeRobot's SmolVLA.
NormMode = Literal["mean_std", "identity"]


@dataclass(frozen=True)
class PolicyConfig:
    """Everything a policy needs beyond the weights and the normalisation statistics.

    camera_keys: full batch keys of the real cameras, in the order the model sees them
        (e.g. "observation.images.top"). Each must be present in every batch.
    empty_cameras: extra camera slots fed as blank images with their tokens masked out (LeRobot's
        `empty_cameras`, used when a checkpoint was trained with more cameras than the robot has).
    state_dim / action_dim: real sizes of "observation.state" and "action" (<= the model's 32 slots).
    n_action_steps: actions of each predicted chunk that `select_action` executes before re-planning.
    truncate_task: if False (default), a task longer than the token budget is an error.
    state_norm / action_norm: normalisation mode of the state and the action.
    norm_eps: the epsilon of `(x - mean) / (std + eps)`.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    camera_keys: tuple[str, ...] = ("observation.images.top",)
    empty_cameras: int = 0
    state_dim: int = 6
    action_dim: int = 6
    n_action_steps: int = 50
    truncate_task: bool = False
    state_norm: NormMode = "mean_std"
    action_norm: NormMode = "mean_std"
    norm_eps: float = 1e-8

    # A default for these would silently describe another policy (the full-size model, six joints).
    REQUIRED_KEYS: ClassVar[tuple[str, ...]] = ("model", "camera_keys", "state_dim", "action_dim")

    def __post_init__(self) -> None:
        configio.check_fields(self)  # also stores camera_keys given as a list as a tuple (hashable)
        for key in self.camera_keys:
            if not key.startswith(OBS_IMAGES_PREFIX) or key == OBS_IMAGES_PREFIX:
                raise ValueError(f"camera key {key!r} must look like '{OBS_IMAGES_PREFIX}<name>'")
        if len(set(self.camera_keys)) != len(self.camera_keys):
            raise ValueError(f"camera_keys has duplicates: {list(self.camera_keys)}")
        if self.empty_cameras < 0:
            raise ValueError(f"empty_cameras must be >= 0, got {self.empty_cameras}")
        if not self.camera_keys:
            raise ValueError("at least one real camera key is required (camera_keys is empty)")
        if not 1 <= self.state_dim <= self.model.max_state_dim:
            raise ValueError(f"state_dim must be in [1, {self.model.max_state_dim}], got {self.state_dim}")
        if not 1 <= self.action_dim <= self.model.max_action_dim:
            raise ValueError(f"action_dim must be in [1, {self.model.max_action_dim}], got {self.action_dim}")
        if not 1 <= self.n_action_steps <= self.model.chunk_size:
            raise ValueError(
                f"n_action_steps must be in [1, chunk_size={self.model.chunk_size}], got {self.n_action_steps}"
            )
        if not self.norm_eps >= 0:
            raise ValueError(f"norm_eps must be >= 0, got {self.norm_eps}")

    # Derived values, one source of truth.
    @property
    def chunk_size(self) -> int:
        return self.model.chunk_size

    @property
    def image_size(self) -> int:
        return self.model.vision.image_size

    @property
    def max_lang_tokens(self) -> int:
        return self.model.max_lang_tokens

    @property
    def num_cameras(self) -> int:
        """Camera slots the model sees: real cameras then empty ones."""
        return len(self.camera_keys) + self.empty_cameras

    def feature_dims(self) -> dict[str, int]:
        """Size of each normalised feature: {"observation.state": state_dim, "action": action_dim}."""
        return {OBS_STATE: self.state_dim, ACTION: self.action_dim}

    def norm_modes(self) -> dict[str, str]:
        return {OBS_STATE: self.state_norm, ACTION: self.action_norm}

    def to_dict(self) -> dict[str, Any]:
        return configio.to_dict(self)

    @classmethod
    def from_dict(cls, d: Any, *, source: str | None = None) -> PolicyConfig:
        """Inverse of `to_dict`; unknown or missing keys and wrong types are errors (`configio.from_dict`)."""
        return configio.from_dict(cls, d, source=source)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, source: str | None = None) -> PolicyConfig:
        return cls.from_dict(json.loads(text), source=source)
