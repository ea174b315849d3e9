"""Random model inputs with padding in them, shared by the model tests.

Kept out of conftest.py: tests/model and tests/policy both have a conftest module, so `from conftest
import ...` picks whichever was imported first when both directories run in one session.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from smolvla.model.config import ModelConfig


@dataclass
class Batch:
    images: torch.Tensor
    image_masks: torch.Tensor
    lang_tokens: torch.Tensor
    lang_masks: torch.Tensor
    state: torch.Tensor
    actions: torch.Tensor

    def obs(self) -> tuple[torch.Tensor, ...]:
        return self.images, self.image_masks, self.lang_tokens, self.lang_masks, self.state


def make_batch(cfg: ModelConfig, batch: int = 2, cameras: int = 2, tokens: int = 7, seed: int = 0) -> Batch:
    """Random inputs; element 1 has its last camera absent and element 0 has 2 padded language tokens."""
    g = torch.Generator().manual_seed(seed)
    side = cfg.vision.image_size
    image_masks = torch.ones(batch, cameras, dtype=torch.bool)
    lang_masks = torch.ones(batch, tokens, dtype=torch.bool)
    if batch > 1:
        image_masks[1, -1] = False
        lang_masks[0, -2:] = False
    return Batch(
        images=torch.rand(batch, cameras, 3, side, side, generator=g) * 2 - 1,
        image_masks=image_masks,
        lang_tokens=torch.randint(0, cfg.decoder.vocab_size, (batch, tokens), generator=g),
        lang_masks=lang_masks,
        state=torch.randn(batch, cfg.max_state_dim, generator=g),
        actions=torch.randn(batch, cfg.chunk_size, cfg.max_action_dim, generator=g),
    )
