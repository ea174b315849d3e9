"""SmolVLAPolicy: the model plus its input/output transforms, normalisation stats and tokenizer.

Batch dict in (LeRobot keys, raw robot units):
    "observation.images.<cam>"  float32[B, 3, H, W] in [0, 1], one per configured camera
    "observation.state"         float32[B, state_dim]
    "task"                      list[str] of length B (or 1, broadcast), or pre-tokenised
    "observation.language.tokens" int64[B, L] + "observation.language.attention_mask" bool[B, L]
    training adds "action" float32[B, chunk, action_dim] and "action_is_pad" bool[B, chunk]
    optional per-sample masks of mixture batches (True = padding): "observation.images_is_pad"
    bool[B, cameras] (views a dataset lacks) and "action_dim_is_pad" bool[B, action_dim]
Out: actions float32[B, chunk, action_dim] in raw units.

Runs in float32 on CPU by default; call `policy.to(torch.bfloat16)` only where the hardware has bf16 (a CPU
without native bf16 is several times slower in it).
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from smolvla.model.smolvla import SmolVLAModel
from smolvla.policy.config import PolicyConfig
from smolvla.policy.normalize import NormStats
from smolvla.policy.rtc import RTCGuide
from smolvla.policy.tokenizer import TaskTokenizer
from smolvla.policy.transforms import (
    Compose,
    CutLastDim,
    Identity,
    Normalize,
    PadLastDim,
    ResizeWithPad,
    ScaleToSigned,
)
from smolvla.types import (
    ACTION,
    ACTION_DIM_IS_PAD,
    ACTION_IS_PAD,
    OBS_IMAGES_IS_PAD,
    OBS_IMAGES_PREFIX,
    OBS_LANG_MASK,
    OBS_LANG_TOKENS,
    OBS_STATE,
    TASK,
)


class SmolVLAPolicy(nn.Module):
    """A SmolVLA policy: `predict_action_chunk`, `select_action` (with an action queue), `compute_loss`."""

    def __init__(
        self,
        config: PolicyConfig,
        stats: NormStats,
        tokenizer: TaskTokenizer | None = None,
        model: SmolVLAModel | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.stats = stats
        self.tokenizer = tokenizer
        if tokenizer is not None and tokenizer.max_length != config.max_lang_tokens:
            raise ValueError(
                f"tokenizer max_length {tokenizer.max_length} != config max_lang_tokens {config.max_lang_tokens}"
            )
        self.model = model if model is not None else SmolVLAModel(config.model)
        self._state_in = Compose([self._norm(OBS_STATE), PadLastDim(config.model.max_state_dim)])
        self._action_in = Compose([self._norm(ACTION), PadLastDim(config.model.max_action_dim)])
        # The output chain mirrors the action input chain: cut the padding, then undo the normalisation.
        self._action_out = Compose([CutLastDim(config.action_dim), self._norm(ACTION).inverse()])
        self._image_in = Compose([ResizeWithPad(config.image_size), ScaleToSigned()])
        self._queue: deque[torch.Tensor] = deque()

    def _norm(self, feature: str) -> Normalize | Identity:
        if self.config.norm_modes()[feature] == "identity":
            return Identity()
        return Normalize(self.stats.get(feature, "mean"), self.stats.get(feature, "std"), self.config.norm_eps)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    # ----------------------------------------------------------------------------------------- inference
    # Serves real-time chunking (`rtc=`): the server offers it to clients only for policies that say so.
    supports_rtc = True

    @torch.no_grad()
    def predict_action_chunk(
        self, batch: dict, noise: torch.Tensor | None = None, rtc: RTCGuide | None = None
    ) -> torch.Tensor:
        """One chunk of actions for each batch element: float32[B, chunk, action_dim] in raw units.

        noise: optional float32[B, chunk, max_action_dim], the t=1 starting point of the flow.
        rtc: real-time chunking guidance (see `smolvla.policy.rtc`): the chunk is inpainted against each
            element's still-to-execute prefix. Needs autograd (not under `torch.inference_mode`).
        """
        self.eval()
        inputs = self._model_inputs(batch)
        bsize = inputs["state"].shape[0]
        if noise is not None:
            noise = self._check_noise(noise, bsize)
        if rtc is None:
            chunk = self.model.sample_actions(**inputs, noise=noise)
        else:
            chunk = self._sample_rtc(inputs, noise, rtc)
        return self._action_out(chunk.float())

    def _sample_rtc(self, inputs: dict[str, torch.Tensor], noise: torch.Tensor | None, rtc: RTCGuide) -> torch.Tensor:
        bsize, cfg = inputs["state"].shape[0], self.config.model
        if tuple(rtc.prefix.shape) != (bsize, cfg.chunk_size, self.config.action_dim):
            want = [bsize, cfg.chunk_size, self.config.action_dim]
            raise ValueError(f"RTC prefix must be float32{want}, got {list(rtc.prefix.shape)}")
        if noise is None:
            noise = torch.randn((bsize, cfg.chunk_size, cfg.max_action_dim), device=self.device)
        ctx = self.model.prefill(**inputs)
        return rtc.sample(lambda x, t: self.model.velocity(ctx, x, t), noise, cfg.num_steps, self._action_in)

    @torch.no_grad()
    def select_action(self, batch: dict) -> torch.Tensor:
        """The next action float32[B, action_dim]; predicts a chunk when the queue is empty and then
        serves its first `n_action_steps` actions one call at a time. Call `reset()` between episodes."""
        if not self._queue:
            chunk = self.predict_action_chunk(batch)
            self._queue.extend(chunk[:, : self.config.n_action_steps].transpose(0, 1))
        return self._queue.popleft()

    def reset(self) -> None:
        """Forget queued actions (start of an episode)."""
        self._queue.clear()

    def set_n_action_steps(self, n: int) -> None:
        """Execute `n` actions of each chunk before re-planning (1..chunk_size; validated by the config).

        Re-planning more often trades compute for closed-loop reactions: a chunk is predicted open loop,
        so precise tasks often do better with fewer executed steps than the chunk holds."""
        self.config = replace(self.config, n_action_steps=int(n))
        self.reset()

    # ------------------------------------------------------------------------------------------ training
    def compute_loss(
        self, batch: dict, noise: torch.Tensor | None = None, time: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Flow-matching loss averaged over real timesteps and real action dims only.

        Returns (loss: scalar, per_element: float32[B, chunk, max_action_dim]) where per_element is the
        model's squared error with padded timesteps (`action_is_pad`) and padded dims (>= action_dim, and
        per sample those `action_dim_is_pad` marks, as a mixture of datasets with fewer joints has) set to 0,
        so loss == per_element.sum() / number of real entries.
        """
        inputs = self._model_inputs(batch)
        bsize = inputs["state"].shape[0]
        actions, is_pad = self._check_actions(batch, bsize)
        if noise is not None:
            noise = self._check_noise(noise, bsize)
        if time is not None and tuple(time.shape) != (bsize,):
            raise ValueError(f"time must be float32[{bsize}], got shape {tuple(time.shape)}")
        target = self._action_in(actions).to(self.device, self.dtype)
        per = self.model.compute_loss(**inputs, actions=target, noise=noise, time=time).float()
        dims = (torch.arange(per.shape[-1], device=per.device) < self.config.action_dim).expand(bsize, -1)
        if ACTION_DIM_IS_PAD in batch:
            real = ~self._sample_mask(batch, ACTION_DIM_IS_PAD, bsize, self.config.action_dim).to(per.device)
            dims = dims & torch.cat([real, dims[:, self.config.action_dim :]], dim=1)
        mask = (~is_pad.to(per.device))[:, :, None] & dims[:, None, :]
        count = mask.sum()
        if count == 0:
            raise ValueError("every action timestep in the batch is padding (action_is_pad all True)")
        per = per * mask
        return per.sum() / count, per

    # ---------------------------------------------------------------------------------- batch -> inputs
    def _model_inputs(self, batch: dict) -> dict[str, torch.Tensor]:
        """Validate a batch and turn it into the model's keyword arguments (see module docstring)."""
        if not isinstance(batch, dict):
            raise ValueError(f"batch must be a dict, got {type(batch).__name__}")
        state = self._check_state(batch)
        bsize = state.shape[0]
        images, image_masks = self._images(batch, bsize)
        tokens, lang_mask = self._language(batch, bsize)
        dev, dt = self.device, self.dtype
        return {
            "images": images.to(dev, dt),
            "image_masks": image_masks.to(dev),
            "lang_tokens": tokens.to(dev),
            "lang_masks": lang_mask.to(dev),
            "state": self._state_in(state).to(dev, dt),
        }

    def _check_state(self, batch: dict) -> torch.Tensor:
        if OBS_STATE not in batch:
            raise ValueError(f"batch has no {OBS_STATE!r}; keys: {sorted(batch)}")
        state = _float_tensor(batch[OBS_STATE], OBS_STATE)
        if state.ndim != 2 or state.shape[1] != self.config.state_dim:
            raise ValueError(f"{OBS_STATE} must be float32[B, {self.config.state_dim}], got {tuple(state.shape)}")
        return state

    def _images(self, batch: dict, bsize: int) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (float32[B, N, 3, S, S] in [-1, 1], bool[B, N]) on the policy's device, N = real cameras + empty
        cameras. Images are checked where they are (one host sync for all cameras), then moved and resized
        on the policy's device."""
        present = {k for k in batch if k.startswith(OBS_IMAGES_PREFIX)}
        expected = set(self.config.camera_keys)
        if present != expected:
            raise ValueError(
                f"camera keys mismatch: expected {sorted(expected)}, got {sorted(present)} "
                f"(missing {sorted(expected - present)}, extra {sorted(present - expected)})"
            )
        frames = []
        for key in self.config.camera_keys:
            img = _float_tensor(batch[key], key, check_finite=False)  # the range check below catches NaN/inf
            if img.ndim != 4 or img.shape[0] != bsize or img.shape[1] != 3:
                raise ValueError(f"{key} must be float32[{bsize}, 3, H, W], got shape {tuple(img.shape)}")
            frames.append(img)
        _check_unit_range(frames, self.config.camera_keys)
        device = self.device
        images = [self._image_in(img.to(device)) for img in frames]
        size = self.config.image_size
        # Empty camera slots: an all -1 image (black after scaling), masked out of attention.
        blank = torch.full((bsize, 3, size, size), -1.0, device=device)
        images += [blank] * self.config.empty_cameras
        masks = torch.tensor([True] * len(self.config.camera_keys) + [False] * self.config.empty_cameras, device=device)
        masks = masks.expand(bsize, -1).clone()
        if OBS_IMAGES_IS_PAD in batch:  # a mixture sample whose dataset lacks a view: its tokens are masked out
            real = len(self.config.camera_keys)
            masks[:, :real] &= ~self._sample_mask(batch, OBS_IMAGES_IS_PAD, bsize, real).to(device)
        return torch.stack(images, dim=1), masks

    @staticmethod
    def _sample_mask(batch: dict, key: str, bsize: int, width: int) -> torch.Tensor:
        """The per-sample padding mask `batch[key]`, checked to be bool[bsize, width]."""
        mask = torch.as_tensor(batch[key])
        if mask.dtype != torch.bool or tuple(mask.shape) != (bsize, width):
            raise ValueError(f"{key} must be bool[{bsize}, {width}], got {mask.dtype}{list(mask.shape)}")
        return mask

    def _language(self, batch: dict, bsize: int) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (int64[B, L], bool[B, L]) from "task" strings or pre-tokenised keys."""
        if OBS_LANG_TOKENS in batch:
            if OBS_LANG_MASK not in batch:
                raise ValueError(f"batch has {OBS_LANG_TOKENS!r} but no {OBS_LANG_MASK!r}")
            tokens, mask = torch.as_tensor(batch[OBS_LANG_TOKENS]), torch.as_tensor(batch[OBS_LANG_MASK])
            if tokens.ndim != 2 or tokens.shape[0] != bsize or tokens.shape != mask.shape:
                raise ValueError(
                    f"language tokens/mask must both be [{bsize}, L], got {tuple(tokens.shape)}/{tuple(mask.shape)}"
                )
            if tokens.shape[1] > self.config.max_lang_tokens:
                raise ValueError(f"{tokens.shape[1]} language tokens exceed the budget {self.config.max_lang_tokens}")
            vocab = self.config.model.decoder.vocab_size
            if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab):
                raise ValueError(f"language token ids must be in [0, {vocab}), got [{tokens.min()}, {tokens.max()}]")
            return tokens.long(), mask.bool()
        if TASK not in batch:
            raise ValueError(f"batch needs {TASK!r} (list of str) or {OBS_LANG_TOKENS!r}; keys: {sorted(batch)}")
        if self.tokenizer is None:
            raise ValueError(
                "this policy has no tokenizer: pass tokenizer_path when loading it, or give pre-tokenised "
                f"{OBS_LANG_TOKENS!r}/{OBS_LANG_MASK!r} in the batch"
            )
        tasks = batch[TASK]
        tasks = [tasks] if isinstance(tasks, str) else list(tasks)
        if len(tasks) == 1 and bsize > 1:
            tasks = tasks * bsize
        if len(tasks) != bsize:
            raise ValueError(f"{TASK!r} has {len(tasks)} strings for a batch of {bsize}")
        return self.tokenizer(tasks)

    def _check_actions(self, batch: dict, bsize: int) -> tuple[torch.Tensor, torch.Tensor]:
        if ACTION not in batch:
            raise ValueError(f"training batch has no {ACTION!r}; keys: {sorted(batch)}")
        actions = _float_tensor(batch[ACTION], ACTION)
        want = (bsize, self.config.chunk_size, self.config.action_dim)
        if tuple(actions.shape) != want:
            raise ValueError(f"{ACTION} must be float32{list(want)}, got {tuple(actions.shape)}")
        is_pad = batch.get(ACTION_IS_PAD)
        if is_pad is None:
            is_pad = torch.zeros(want[:2], dtype=torch.bool)
        is_pad = torch.as_tensor(is_pad)
        if tuple(is_pad.shape) != want[:2] or is_pad.dtype != torch.bool:
            raise ValueError(f"{ACTION_IS_PAD} must be bool{list(want[:2])}, got {is_pad.dtype}{tuple(is_pad.shape)}")
        return actions, is_pad

    def _check_noise(self, noise: torch.Tensor, bsize: int) -> torch.Tensor:
        want = (bsize, self.config.chunk_size, self.config.model.max_action_dim)
        if tuple(noise.shape) != want:
            raise ValueError(f"noise must be float32{list(want)}, got {tuple(noise.shape)}")
        return noise.to(self.device, self.dtype)

    # ------------------------------------------------------------------------------------- persistence
    def save_pretrained(self, path: str | Path) -> None:
        """Write model.safetensors, config.json, stats.safetensors (and tokenizer.json) atomically."""
        from smolvla.policy.checkpoint import save_policy

        save_policy(self, path)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        *,
        tokenizer_path: str | Path | None = None,
    ) -> SmolVLAPolicy:
        """Load a directory written by `save_pretrained`, or a LeRobot SmolVLA checkpoint (its config.json
        names the policy "type"), strictly (names, shapes, stats keys).

        tokenizer_path: LeRobot checkpoints only, whose tokenizer belongs to the backbone: tokenizer.json (or
            a dir holding it), needed for task strings when neither the checkpoint dir nor a local
            `vlm_model_name` dir has one. Our own checkpoints carry theirs.
        """
        from smolvla.policy.checkpoint import load_policy
        from smolvla.policy.lerobot import is_lerobot_checkpoint, load_lerobot_policy

        if is_lerobot_checkpoint(path):
            return load_lerobot_policy(path, tokenizer_path=tokenizer_path, device=device, dtype=dtype)
        if tokenizer_path is not None:
            raise ValueError(f"{path} is not a LeRobot checkpoint; ours carry their own tokenizer: omit tokenizer_path")
        return load_policy(path, device=device, dtype=dtype)


def _float_tensor(value: object, key: str, *, check_finite: bool = True) -> torch.Tensor:
    """A floating tensor (with no NaN/inf when `check_finite`), or a ValueError naming `key`."""
    t = torch.as_tensor(value)
    if not t.is_floating_point():
        raise ValueError(f"{key} must be a floating tensor (float32), got dtype {t.dtype}")
    if check_finite and not torch.isfinite(t).all():
        raise ValueError(f"{key} contains NaN or inf")
    return t.float()


def _check_unit_range(images: list[torch.Tensor], keys: tuple[str, ...]) -> None:
    """Raise unless every image lies in [0, 1] (NaN/inf fail too). One host sync for all cameras, on the
    images' own device: a per-camera `float(img.min())` would stall a GPU pipeline once per image."""
    if not images:
        return
    device = images[0].device
    bounds = torch.stack([torch.stack([img.amin(), img.amax()]).to(device) for img in images]).tolist()
    for key, (lo, hi) in zip(keys, bounds, strict=True):
        if not (lo >= 0.0 and hi <= 1.0):  # written so that NaN fails
            raise ValueError(f"{key} must be in [0, 1] and finite, got values in [{lo:.3g}, {hi:.3g}]")
