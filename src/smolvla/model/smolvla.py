"""SmolVLAModel: vision tower + connector + truncated SmolLM2 + action expert, trained by flow matching.

Dimension legend:
    B   batch
    N   cameras, I image side (vision.image_size)
    L   language tokens (<= max_lang_tokens), V tokens per image
    P   prefix tokens = N * V + L + 1 (the state token)
    S   action chunk (chunk_size), A max_action_dim, Ds max_state_dim
    D   decoder width, De expert width, KV key/value heads, hd head dim

Token layout (one sequence per batch element):

    | cam 0 (V) | cam 1 (V) | ... | language (L) | state (1) || a0 | a1 | ... | a(S-1) |
    |<------------------------ prefix: VLM layers ---------->||<--- action expert --->|

Image and language embeddings are scaled by sqrt(D); see attention.py for the block mask.

Padding follows LeRobot: an absent camera still goes through the vision tower (LeRobot feeds an all -1
image) but its V tokens are marked invalid; language is right-padded with its pad mask False. Padded
tokens keep their embeddings and positions cumsum(valid) - 1 but are excluded from every attention row
and column, so they cannot change real outputs. As in LeRobot's defaults there are no image special
tokens and the prefix is not padded to a fixed length.

Inference fills the prefix keys/values of every layer once (`prefill`), projects the cross-attention
layers' keys/values once, then each Euler step runs only the expert on the S action tokens (`velocity`).
Call `sample_actions` under `torch.inference_mode()`; nothing here moves devices or logs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from smolvla.model.attention import additive_mask, block_mask
from smolvla.model.config import ModelConfig
from smolvla.model.connector import Connector
from smolvla.model.decoder import RMSNorm, TextModel, rope_angles
from smolvla.model.expert import ActionExpert, ExpertContext, expert_positions
from smolvla.model.flow import integrate, sample_time, time_embedding
from smolvla.model.siglip import VisionTower


class SmolVLAModel(nn.Module):
    """The SmolVLA network (no lm_head: SmolVLA never uses it; checkpoint loaders drop it).

    State-dict prefixes, each holding transformers' names below it so checkpoints map by prefix renames:
    `vision.` (SmolVLM vision_model), `connector.` (SmolVLM connector), `text.` (the kept text_model
    layers, embed_tokens, norm), `expert.` (LeRobot's lm_expert layers and norm), and the flow-matching
    linears `state_proj`, `action_in_proj`, `action_out_proj`, `action_time_mlp_in`, `action_time_mlp_out`.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        eager = cfg.attention == "eager"
        self.vision = VisionTower(cfg.vision, eager)
        self.connector = Connector(cfg)
        self.text = TextModel(cfg.decoder, eager)
        self.expert = ActionExpert(cfg)
        self.state_proj = nn.Linear(cfg.max_state_dim, cfg.decoder.hidden)
        self.action_in_proj = nn.Linear(cfg.max_action_dim, cfg.expert_hidden)
        self.action_out_proj = nn.Linear(cfg.expert_hidden, cfg.max_action_dim)
        self.action_time_mlp_in = nn.Linear(2 * cfg.expert_hidden, cfg.expert_hidden)
        self.action_time_mlp_out = nn.Linear(cfg.expert_hidden, cfg.expert_hidden)

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype of the activations (the token embedding's; Linears may be swapped for quantised ones)."""
        return self.text.embed_tokens.weight.dtype

    # ------------------------------------------------------------------ embeddings
    def embed_images(self, images: Tensor) -> Tensor:
        """float[B, N, 3, I, I] in [-1, 1] -> float[B, N * V, D], already scaled by sqrt(D).

        All cameras go through the vision tower as one batch (bigger matmuls are faster on CPU).
        """
        b, n = images.shape[:2]
        feats = self.connector(self.vision(images.flatten(0, 1).to(self.dtype)))  # (b*n, v, d)
        # LeRobot multiplies by a tensor of the embedding dtype (rounded sqrt in bf16); mirror it.
        feats = feats * torch.tensor(feats.shape[-1] ** 0.5, dtype=feats.dtype, device=feats.device)
        return feats.view(b, n * feats.shape[1], feats.shape[2])

    def embed_prefix(
        self, images: Tensor, image_masks: Tensor, lang_tokens: Tensor, lang_masks: Tensor, state: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Prefix token embeddings with their padding and block-start flags.

        Returns:
            embs float[B, P, D]; valid bool[B, P] (False: absent camera / padded language token);
            new_block bool[B, P] (True only for the state token: images+language form block 0).
        """
        b, n = image_masks.shape
        img = self.embed_images(images)
        lang = self.text.embed_tokens(lang_tokens) * math.sqrt(self.config.decoder.hidden)
        state_tok = self.state_proj(state.to(self.dtype))[:, None]
        embs = torch.cat([img, lang, state_tok], dim=1)
        v = self.config.tokens_per_image
        ones = torch.ones(b, 1, dtype=torch.bool, device=embs.device)
        valid = torch.cat([image_masks.repeat_interleave(v, dim=1), lang_masks, ones], dim=1)
        new_block = torch.zeros_like(valid)
        new_block[:, -1] = True
        return embs, valid, new_block

    def embed_suffix(self, x_t: Tensor, time: Tensor) -> Tensor:
        """Noisy actions float[B, S, A] and flow times float[B] -> action tokens float[B, S, De].

        action_in_proj(x_t) is concatenated with the sinusoidal time embedding, then Linear-SiLU-Linear.
        """
        dtype = self.dtype
        act = self.action_in_proj(x_t.to(dtype))
        cfg = self.config
        t_emb = time_embedding(time, cfg.expert_hidden, cfg.min_period, cfg.max_period).to(dtype)
        h = torch.cat([act, t_emb[:, None, :].expand_as(act)], dim=2)
        return self.action_time_mlp_out(F.silu(self.action_time_mlp_in(h)))

    # ------------------------------------------------------------------ prefix / expert
    def prefill(
        self, images: Tensor, image_masks: Tensor, lang_tokens: Tensor, lang_masks: Tensor, state: Tensor
    ) -> ExpertContext:
        """Run the prefix through the VLM layers once and build everything the expert reads per step."""
        cfg = self.config
        embs, valid, new_block = self.embed_prefix(images, image_masks, lang_tokens, lang_masks, state)
        hd = cfg.decoder.head_dim
        # int64 before the sum (torch would promote a bool itself; ONNX's CumSum refuses bool).
        cos, sin = rope_angles(torch.cumsum(valid.long(), dim=1) - 1, hd, cfg.rope_wavelength)
        prefix_mask = additive_mask(block_mask(valid, new_block), embs.dtype)
        prefix_kv = self.text.kv_cache(embs, cos, sin, prefix_mask)

        b, s = valid.shape[0], cfg.chunk_size
        self_pos, cross_pos = expert_positions(valid, s)
        self_cos, self_sin = rope_angles(self_pos, hd, cfg.rope_wavelength)
        cross_cos, cross_sin = rope_angles(cross_pos, hd, cfg.rope_wavelength)
        # Action rows: every valid prefix token, then the actions up to and including their own.
        to_prefix = valid[:, None, :].expand(b, s, valid.shape[1])
        causal = torch.ones(s, s, dtype=torch.bool, device=valid.device).tril().expand(b, s, s)
        return ExpertContext(
            kv=self.expert.project_prefix(prefix_kv),
            self_cos=self_cos,
            self_sin=self_sin,
            cross_cos=cross_cos,
            cross_sin=cross_sin,
            self_mask=additive_mask(torch.cat([to_prefix, causal], dim=2), embs.dtype),
            cross_mask=additive_mask(to_prefix, embs.dtype),
        )

    def velocity(self, ctx: ExpertContext, x_t: Tensor, time: Tensor) -> Tensor:
        """Predicted flow velocity float32[B, S, A] at noisy actions x_t float[B, S, A], times float[B]."""
        out = self.expert(self.embed_suffix(x_t, time), ctx)
        return self.action_out_proj(out).float()

    # ------------------------------------------------------------------ public API
    def compute_loss(
        self,
        images: Tensor,
        image_masks: Tensor,
        lang_tokens: Tensor,
        lang_masks: Tensor,
        state: Tensor,
        actions: Tensor,
        noise: Tensor | None = None,
        time: Tensor | None = None,
    ) -> Tensor:
        """Unreduced flow-matching loss float32[B, S, A] = (v(x_t, t) - (noise - actions))^2.

        Args:
            images: float[B, N, 3, I, I] in [-1, 1]; image_masks: bool[B, N] (False: camera absent).
            lang_tokens: int64[B, L]; lang_masks: bool[B, L].
            state: float[B, Ds]; actions: float[B, S, A] (normalised, zero-padded).
            noise: float[B, S, A] (default: standard normal); time: float[B] (default: `sample_time`).
        """
        self._check_inputs(images, image_masks, lang_tokens, lang_masks, state)
        self._check_shape("actions", actions, (state.shape[0], self.config.chunk_size, self.config.max_action_dim))
        actions = actions.float()
        noise = torch.randn_like(actions) if noise is None else noise.float()
        time = sample_time(actions.shape[0], device=actions.device) if time is None else time.float()
        self._check_shape("noise", noise, tuple(actions.shape))
        self._check_shape("time", time, (actions.shape[0],))
        t = time[:, None, None]
        x_t = t * noise + (1 - t) * actions
        ctx = self.prefill(images, image_masks, lang_tokens, lang_masks, state)
        return (self.velocity(ctx, x_t, time) - (noise - actions)).square()

    def forward(self, *args: Tensor, **kwargs: Tensor | None) -> Tensor:
        """Same as `compute_loss`, so wrappers that call the module (DDP, accelerate) run the training loss."""
        return self.compute_loss(*args, **kwargs)

    def sample_actions(
        self,
        images: Tensor,
        image_masks: Tensor,
        lang_tokens: Tensor,
        lang_masks: Tensor,
        state: Tensor,
        noise: Tensor | None = None,
        num_steps: int | None = None,
    ) -> Tensor:
        """Denoised action chunk float32[B, S, A] (normalised units), Euler from t=1 (noise) to t=0.

        Inputs as in `compute_loss`; noise float[B, S, A] (default: standard normal), not modified;
        num_steps defaults to config.num_steps.
        """
        self._check_inputs(images, image_masks, lang_tokens, lang_masks, state)
        cfg = self.config
        shape = (state.shape[0], cfg.chunk_size, cfg.max_action_dim)
        if noise is None:
            noise = torch.randn(shape, dtype=torch.float32, device=state.device)
        self._check_shape("noise", noise, shape)
        ctx = self.prefill(images, image_masks, lang_tokens, lang_masks, state)
        return integrate(lambda x, t: self.velocity(ctx, x, t), noise.float(), num_steps or cfg.num_steps)

    # ------------------------------------------------------------------ helpers
    def init_weights(self, seed: int = 0, std: float = 0.02) -> SmolVLAModel:
        """Fill every parameter in place: weights ~ N(0, std), biases 0, norm scales 1. Returns self.

        Much faster than the default inits at full size, and works after `to_empty` from the meta device.
        """
        gen = torch.Generator(device=self.text.embed_tokens.weight.device).manual_seed(seed)
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear | nn.Conv2d | nn.Embedding):
                    module.weight.normal_(0.0, std, generator=gen)
                    if getattr(module, "bias", None) is not None:
                        module.bias.zero_()
                elif isinstance(module, nn.LayerNorm):
                    module.weight.fill_(1.0)
                    module.bias.zero_()
                elif isinstance(module, RMSNorm):
                    module.weight.fill_(1.0)
        return self

    def _check_inputs(
        self, images: Tensor, image_masks: Tensor, lang_tokens: Tensor, lang_masks: Tensor, state: Tensor
    ) -> None:
        cfg = self.config
        if images.ndim != 5:
            raise ValueError(f"images must be float[B, N, 3, H, W], got shape {tuple(images.shape)}")
        b, n = images.shape[:2]
        side = cfg.vision.image_size
        self._check_shape("images", images, (b, n, 3, side, side))
        self._check_shape("image_masks", image_masks, (b, n), torch.bool)
        if lang_tokens.ndim != 2 or lang_tokens.shape[1] > cfg.max_lang_tokens:
            raise ValueError(
                f"lang_tokens must be int64[B, L] with L <= max_lang_tokens={cfg.max_lang_tokens}, "
                f"got shape {tuple(lang_tokens.shape)}"
            )
        self._check_shape("lang_tokens", lang_tokens, (b, lang_tokens.shape[1]), torch.int64)
        self._check_shape("lang_masks", lang_masks, tuple(lang_tokens.shape), torch.bool)
        self._check_shape("state", state, (b, cfg.max_state_dim))

    @staticmethod
    def _check_shape(name: str, x: Tensor, shape: tuple[int, ...], dtype: torch.dtype | None = None) -> None:
        if tuple(x.shape) != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {tuple(x.shape)}")
        if dtype is not None and x.dtype != dtype:
            raise ValueError(f"{name}: expected dtype {dtype}, got {x.dtype}")


def build_random(
    cfg: ModelConfig, seed: int = 0, std: float = 0.02, device: str | torch.device = "cpu"
) -> SmolVLAModel:
    """A randomly initialised model, built on the meta device first so no time goes into default inits."""
    with torch.device("meta"):
        model = SmolVLAModel(cfg)
    return model.to_empty(device=device).init_weights(seed=seed, std=std)


def lm_head_parameters(cfg: ModelConfig) -> int:
    """Size of the (untied, unused) lm_head LeRobot holds and counts, which we drop: vocab x D."""
    return cfg.decoder.vocab_size * cfg.decoder.hidden
