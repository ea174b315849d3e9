"""End-to-end parity with LeRobot's own SmolVLA code (VLAFlowMatching of lerobot 0.6.1), same weights, fp32.

Opt-in: lerobot 0.6.1 needs Python >= 3.12 and heavy extras, so it is not a dependency. Unpack its wheel
and point the test at it (nothing else of lerobot is imported; its package __init__s are bypassed):

    pip download --no-deps --python-version 3.12 --only-binary=:all: -d /tmp/dl lerobot==0.6.1
    unzip -q /tmp/dl/lerobot-0.6.1-py3-none-any.whl -d /tmp/lrpkg
    pip install --target /tmp/lrdeps --no-deps draccus mergedeep typing_inspect mypy_extensions toml
    SMOLVLA_LEROBOT_SRC=/tmp/lrpkg:/tmp/lrdeps pytest -m slow tests/model/test_lerobot_parity.py

Measured on the tiny config with an absent camera and padded language: max |diff| 7e-7 for a 10-step
chunk (|a| ~ 0.9) and 6e-6 for the unreduced loss (values up to ~26).
"""

from __future__ import annotations

import os
import sys
import types
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from smolvla.model.config import ExpertConfig, get_config
from smolvla.model.smolvla import SmolVLAModel
from smolvla.policy.testing import TINY_SMOLVLM_CONFIG

pytestmark = pytest.mark.slow
SRC = os.environ.get("SMOLVLA_LEROBOT_SRC")


def _import_lerobot(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """lerobot.policies.smolvla.modeling_smolvla with the unrelated policy-package imports stubbed out."""
    if not SRC:
        pytest.skip("set SMOLVLA_LEROBOT_SRC to an unpacked lerobot 0.6.1 wheel (see module docstring)")
    for path in reversed(SRC.split(os.pathsep)):
        monkeypatch.syspath_prepend(path)
    import lerobot

    root = os.path.dirname(lerobot.__file__)

    def module(name: str, path: str | None = None, **attrs) -> None:
        m = types.ModuleType(name)
        if path is not None:
            m.__path__ = [path]
        m.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, m)

    module("lerobot.policies", f"{root}/policies")
    module("lerobot.policies.smolvla", f"{root}/policies/smolvla")
    module("lerobot.policies.common", f"{root}/policies/common")
    module("lerobot.policies.pretrained", PreTrainedPolicy=nn.Module)
    module("lerobot.policies.rtc", f"{root}/policies/rtc")
    module("lerobot.policies.rtc.modeling_rtc", RTCProcessor=object)
    module("lerobot.policies.utils", populate_queues=None)
    module("lerobot.policies.smolvla.configuration_smolvla", SmolVLAConfig=object)
    from lerobot.policies.smolvla import modeling_smolvla, smolvlm_with_expert

    # No processor files in the tiny backbone dir: LeRobot only reads two special-token ids from it.
    tok = SimpleNamespace(fake_image_token_id=1, global_image_token_id=2)
    processor = SimpleNamespace(from_pretrained=lambda *a, **k: SimpleNamespace(tokenizer=tok))
    monkeypatch.setattr(smolvlm_with_expert, "AutoProcessor", processor)
    return modeling_smolvla


def _crop_keep_first(cache, max_length: int) -> None:
    # lerobot 0.6.1 calls DynamicCache.crop(prefix_len) with transformers 4.x semantics (keep the first n).
    for layer in cache.layers:
        if layer.keys is not None and layer.keys.numel() and layer.keys.shape[-2] > max_length:
            layer.keys, layer.values = layer.keys[..., :max_length, :], layer.values[..., :max_length, :]


@torch.no_grad()
def test_matches_lerobot_vla_flow_matching(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    transformers = pytest.importorskip("transformers")
    from smolvla.policy.keymaps import strict_load
    from smolvla.policy.lerobot import lerobot_to_ours

    modeling = _import_lerobot(monkeypatch)
    monkeypatch.setattr(transformers.DynamicCache, "crop", _crop_keep_first)
    torch.manual_seed(0)
    transformers.SmolVLMForConditionalGeneration(transformers.SmolVLMConfig(**TINY_SMOLVLM_CONFIG)).save_pretrained(
        tmp_path
    )
    chunk, steps = 10, 10
    lr_cfg = SimpleNamespace(
        vlm_model_name=str(tmp_path), freeze_vision_encoder=True, train_expert_only=True, load_vlm_weights=False,
        attention_mode="cross_attn", num_expert_layers=-1, num_vlm_layers=4, self_attn_every_n_layers=2,
        expert_width_multiplier=0.75, device="cpu", max_state_dim=32, max_action_dim=32, train_state_proj=True,
        add_image_special_tokens=False, prefix_length=-1, compile_model=False, rtc_config=None, chunk_size=chunk,
        min_period=4e-3, max_period=4.0, use_cache=True, num_steps=steps,
    )  # fmt: skip
    lr = modeling.VLAFlowMatching(lr_cfg).float().eval()
    for name, p in lr.named_parameters():  # larger-than-default weights so every path moves the outputs
        p.copy_(1 + 0.1 * torch.randn_like(p) if "norm" in name else 0.08 * torch.randn_like(p))
    cfg = replace(get_config("tiny"), chunk_size=chunk, num_steps=steps, expert=ExpertConfig(mlp_multiple_of=256))
    ours = SmolVLAModel(cfg).eval()
    state_dict = {"model." + k: v for k, v in lr.state_dict().items()}
    strict_load(ours, lerobot_to_ours(state_dict, cfg, "lerobot"), "lerobot")

    g = torch.Generator().manual_seed(2)
    images = torch.rand(2, 2, 3, 64, 64, generator=g) * 2 - 1
    image_masks = torch.tensor([[True, True], [True, False]])
    tokens = torch.randint(0, 512, (2, 7), generator=g)
    lang_masks = torch.ones(2, 7, dtype=torch.bool)
    lang_masks[0, -3:] = False
    state = torch.randn(2, 32, generator=g)
    noise, actions = torch.randn(2, chunk, 32, generator=g), torch.randn(2, chunk, 32, generator=g)
    time = torch.tensor([0.3, 0.85])
    cams, cam_masks = list(images.unbind(1)), list(image_masks.unbind(1))

    expected = lr.sample_actions(cams, cam_masks, tokens, lang_masks, state, noise=noise.clone())
    got = ours.sample_actions(images, image_masks, tokens, lang_masks, state, noise=noise)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    expected = lr.forward(cams, cam_masks, tokens, lang_masks, state, actions, noise=noise, time=time)
    got = ours.compute_loss(images, image_masks, tokens, lang_masks, state, actions, noise=noise, time=time)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
