"""Architecture configuration: frozen dataclasses holding sizes only, plus named presets.

Optimiser, schedule, robot and camera settings live elsewhere (training config, policy config).
`get_config("smolvla_base")` is the full 450M model of the paper; `get_config("tiny")` is the same
code at a size every CPU test can afford. Each class checks its field types (`configio.check_fields`)
and its values in `__post_init__`; read from a file, every field must be present (an architecture has
no safe default).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

from smolvla import configio


def _check_positive(owner: str, **values: int | float) -> None:
    # Also keeps zeros out of the divisions below (`heads % kv_heads`, `image_size % patch_size`, ...).
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{owner}.{name} must be > 0, got {value}")


@dataclass(frozen=True)
class VisionConfig:
    """SigLIP-style vision tower (the SmolVLM2 vision encoder)."""

    hidden: int = 768
    layers: int = 12
    heads: int = 12
    mlp: int = 3072
    image_size: int = 512
    patch_size: int = 16
    layer_norm_eps: float = 1e-6

    REQUIRED_KEYS: ClassVar[str] = configio.ALL_FIELDS

    def __post_init__(self) -> None:
        configio.check_fields(self)
        _check_positive(
            "VisionConfig",
            hidden=self.hidden,
            layers=self.layers,
            heads=self.heads,
            mlp=self.mlp,
            image_size=self.image_size,
            patch_size=self.patch_size,
        )
        if self.hidden % self.heads:
            raise ValueError(f"VisionConfig.hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        if self.image_size % self.patch_size:
            raise ValueError(
                f"VisionConfig.image_size ({self.image_size}) must be a multiple of patch_size ({self.patch_size})"
            )

    @property
    def patches_per_side(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.patches_per_side**2


@dataclass(frozen=True)
class ConnectorConfig:
    """Pixel shuffle (space-to-depth) by `scale_factor`, then one bias-free linear to the text width."""

    scale_factor: int = 4

    REQUIRED_KEYS: ClassVar[str] = configio.ALL_FIELDS

    def __post_init__(self) -> None:
        configio.check_fields(self)
        _check_positive("ConnectorConfig", scale_factor=self.scale_factor)


@dataclass(frozen=True)
class DecoderConfig:
    """SmolLM2 (Llama) text decoder, of which the first `layers` of `total_layers` are kept.

    There is no RoPE base here: SmolVLA runs the decoder only in its joint VLM+expert layers, whose RoPE
    wavelength is `ModelConfig.rope_wavelength` (LeRobot's 10,000), not the backbone's `rope_theta`
    (100,000 for SmolLM2). Configs written before that field was dropped still read (`RETIRED_KEYS`).
    """

    hidden: int = 960
    layers: int = 16
    total_layers: int = 32
    heads: int = 15
    kv_heads: int = 5
    head_dim: int = 64
    mlp: int = 2560
    rms_norm_eps: float = 1e-5
    vocab_size: int = 49_280

    REQUIRED_KEYS: ClassVar[str] = configio.ALL_FIELDS
    RETIRED_KEYS: ClassVar[tuple[str, ...]] = ("rope_theta",)

    def __post_init__(self) -> None:
        configio.check_fields(self)
        _check_positive(
            "DecoderConfig",
            hidden=self.hidden,
            layers=self.layers,
            total_layers=self.total_layers,
            heads=self.heads,
            kv_heads=self.kv_heads,
            head_dim=self.head_dim,
            mlp=self.mlp,
            vocab_size=self.vocab_size,
        )
        if self.layers > self.total_layers:
            raise ValueError(f"DecoderConfig.layers ({self.layers}) exceeds total_layers ({self.total_layers})")
        if self.heads % self.kv_heads:
            raise ValueError(f"DecoderConfig.heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})")


@dataclass(frozen=True)
class ExpertConfig:
    """The flow-matching action expert: the decoder's layer recipe at `width_factor` of its width.

    Layer i is a self-attention layer (expert tokens join the prefix tokens in one attention) when
    `i % self_attn_every_n_layers == 0`, otherwise a cross-attention layer (expert queries attend only
    to that layer's prefix keys/values, re-projected by the expert's own k/v linears).
    """

    width_factor: float = 0.75
    self_attn_every_n_layers: int = 2
    mlp_multiple_of: int = 256

    REQUIRED_KEYS: ClassVar[str] = configio.ALL_FIELDS

    def __post_init__(self) -> None:
        configio.check_fields(self)
        _check_positive("ExpertConfig", width_factor=self.width_factor, mlp_multiple_of=self.mlp_multiple_of)
        if self.self_attn_every_n_layers < 1:
            raise ValueError(f"ExpertConfig.self_attn_every_n_layers must be >= 1, got {self.self_attn_every_n_layers}")


@dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes tensor shapes of the SmolVLA model."""

    vision: VisionConfig = field(default_factory=VisionConfig)
    connector: ConnectorConfig = field(default_factory=ConnectorConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    expert: ExpertConfig = field(default_factory=ExpertConfig)
    max_state_dim: int = 32
    max_action_dim: int = 32
    chunk_size: int = 50
    num_steps: int = 10
    max_lang_tokens: int = 48
    # Sinusoidal time embedding periods (seconds-free; flow time t in [0, 1]).
    min_period: float = 4e-3
    max_period: float = 4.0
    # RoPE wavelength SmolVLA applies in its joint VLM+expert layers. LeRobot's `apply_rope` uses its
    # default 10,000 for both, not the backbone's `rope_theta` (100,000, which a plain SmolLM2 forward
    # would use, so DecoderConfig does not keep it); we match LeRobot so its checkpoints reproduce.
    rope_wavelength: float = 10_000.0
    attention: Literal["sdpa", "eager"] = "sdpa"

    REQUIRED_KEYS: ClassVar[str] = configio.ALL_FIELDS

    def __post_init__(self) -> None:
        configio.check_fields(self)
        _check_positive(
            "ModelConfig",
            max_state_dim=self.max_state_dim,
            max_action_dim=self.max_action_dim,
            chunk_size=self.chunk_size,
            num_steps=self.num_steps,
            max_lang_tokens=self.max_lang_tokens,
            rope_wavelength=self.rope_wavelength,
        )
        if self.vision.patches_per_side % self.connector.scale_factor:
            raise ValueError(
                f"patches per side ({self.vision.patches_per_side}) must be divisible by the connector "
                f"scale_factor ({self.connector.scale_factor})"
            )
        width = self.decoder.hidden * self.expert.width_factor
        if width != int(width):
            raise ValueError(
                f"expert width decoder.hidden * width_factor = {self.decoder.hidden} * {self.expert.width_factor} "
                f"= {width} is not an integer"
            )

    # Derived sizes: one source of truth for every module.
    @property
    def tokens_per_image(self) -> int:
        return (self.vision.patches_per_side // self.connector.scale_factor) ** 2

    @property
    def connector_in_features(self) -> int:
        return self.vision.hidden * self.connector.scale_factor**2

    @property
    def expert_hidden(self) -> int:
        return int(self.decoder.hidden * self.expert.width_factor)

    @property
    def expert_mlp(self) -> int:
        # LeRobot's `get_intermediate_size`: 4 * int(2/3 * width), rounded up to a multiple (256 there).
        # The inner truncation comes first: int(8/3 * width) differs for some widths (e.g. 100: 266 vs 264).
        base = 4 * int(2 * self.expert_hidden / 3)
        m = self.expert.mlp_multiple_of
        return m * math.ceil(base / m)

    @property
    def kv_width(self) -> int:
        return self.decoder.kv_heads * self.decoder.head_dim

    def is_self_attn_layer(self, layer: int) -> bool:
        return layer % self.expert.self_attn_every_n_layers == 0

    def to_dict(self) -> dict[str, Any]:
        return configio.to_dict(self)

    @classmethod
    def from_dict(cls, d: Any, *, source: str | None = None) -> ModelConfig:
        """Inverse of `to_dict`; unknown or missing keys and wrong types are errors (`configio.from_dict`)."""
        return configio.from_dict(cls, d, source=source)


def _tiny() -> ModelConfig:
    return ModelConfig(
        vision=VisionConfig(hidden=32, layers=2, heads=2, mlp=64, image_size=64, patch_size=8),
        connector=ConnectorConfig(scale_factor=2),
        decoder=DecoderConfig(
            hidden=64, layers=4, total_layers=8, heads=4, kv_heads=2, head_dim=16, mlp=128, vocab_size=512
        ),
        expert=ExpertConfig(width_factor=0.75, self_attn_every_n_layers=2, mlp_multiple_of=32),
        chunk_size=10,
        num_steps=4,
        max_lang_tokens=16,
    )


def _small() -> ModelConfig:
    # A CPU-trainable size for simulation experiments (~10M parameters), 64x64 cameras.
    return ModelConfig(
        vision=VisionConfig(hidden=192, layers=4, heads=3, mlp=768, image_size=64, patch_size=8),
        connector=ConnectorConfig(scale_factor=2),
        decoder=DecoderConfig(
            hidden=256, layers=6, total_layers=6, heads=4, kv_heads=2, head_dim=64, mlp=768, vocab_size=512
        ),
        expert=ExpertConfig(width_factor=0.75, self_attn_every_n_layers=2, mlp_multiple_of=64),
        chunk_size=50,
        num_steps=10,
        max_lang_tokens=48,
    )


def _demo() -> ModelConfig:
    # The committed Meta-World demo policy (3.6M parameters, trains in ~8 minutes on 2 CPU cores): 64x64
    # images -> 16 visual tokens, decoder width 192, expert width 144, chunks of 30, 40 byte-level tokens.
    return ModelConfig(
        vision=VisionConfig(hidden=128, layers=4, heads=2, mlp=512, image_size=64, patch_size=8),
        connector=ConnectorConfig(scale_factor=2),
        decoder=DecoderConfig(
            hidden=192, layers=4, total_layers=4, heads=4, kv_heads=2, head_dim=32, mlp=576, vocab_size=512
        ),
        expert=ExpertConfig(width_factor=0.75, self_attn_every_n_layers=2, mlp_multiple_of=32),
        chunk_size=30,
        num_steps=10,
        max_lang_tokens=40,
    )


def _so101() -> ModelConfig:
    # The SO-101 suite's policies: the demo architecture with 128x128 views cut into 16x16 patches. Same token
    # count as 64x64 in 8x8 patches (16 visual tokens per view, so the same speed past the patch embedding),
    # but a 3 cm cube seen by the top camera covers ~10 px instead of ~5.
    return replace(_demo(), vision=VisionConfig(hidden=128, layers=4, heads=2, mlp=512, image_size=128, patch_size=16))


PRESETS = {
    "smolvla_base": ModelConfig,
    "small": _small,
    "demo": _demo,
    "so101": _so101,
    "tiny": _tiny,
}


def get_config(name: str, **overrides: Any) -> ModelConfig:
    """Return the named preset, with top-level fields replaced by `overrides`.

    A misspelt name raises with the nearest preset names as suggestions.
    """
    if name not in PRESETS:
        near = difflib.get_close_matches(name, PRESETS, n=3)
        hint = f"; did you mean {near}?" if near else ""
        raise ValueError(f"unknown model preset {name!r}: expected one of {sorted(PRESETS)}{hint}")
    cfg = PRESETS[name]()
    return replace(cfg, **overrides) if overrides else cfg
