"""Write the golden file of LeRobot's own SmolVLA outputs that tests/model/test_lerobot_golden.py checks us against.

LeRobot is not a dependency (lerobot 0.6.1 needs Python >= 3.12 and heavy extras), so this script is run
once by hand, and its output is committed. Only `lerobot/policies/smolvla/modeling_smolvla.py` and
`smolvlm_with_expert.py` are executed; the unrelated imports of their packages are stubbed out:

    pip download --no-deps --python-version 3.12 --only-binary=:all: -d /tmp/dl lerobot==0.6.1
    unzip -q /tmp/dl/lerobot-0.6.1-py3-none-any.whl -d /tmp/lrpkg
    pip install --target /tmp/lrdeps --no-deps draccus mergedeep typing_inspect mypy_extensions toml
    SMOLVLA_LEROBOT_SRC=/tmp/lrpkg:/tmp/lrdeps .venv/bin/python scripts/make_lerobot_golden.py

What it does: builds LeRobot's `VLAFlowMatching` on a tiny SmolVLM2 backbone (the "tiny" preset's sizes)
with seeded random weights, then runs it in fp32 on fixed inputs that exercise the masks (batch element 1
has an absent camera, element 0 has 3 padded language tokens): `sample_actions` from fixed noise (10 Euler
steps) and `forward` (the unreduced flow-matching loss) at fixed times.

Output (default tests/fixtures/lerobot_smolvla_golden.safetensors, 1 MB, plus a .json sidecar):
    weights.<LeRobot key>  float16  every parameter of VLAFlowMatching except the unused lm_head, under
                                    LeRobot's checkpoint names ("model." + state_dict key). The weights are
                                    drawn, rounded to float16, and LeRobot runs in fp32 on exactly these
                                    rounded values, so storing float16 halves the file and loses nothing.
    inputs.images        float32[2, 2, 3, 64, 64] in [-1, 1]     inputs.image_masks  bool[2, 2]
    inputs.lang_tokens   int64[2, 7]                               inputs.lang_masks   bool[2, 7]
    inputs.state         float32[2, 32]                            inputs.actions      float32[2, 10, 32]
    inputs.noise         float32[2, 10, 32]                        inputs.time         float32[2]
    outputs.actions      float32[2, 10, 32]  LeRobot's sample_actions(noise)
    outputs.loss         float32[2, 10, 32]  LeRobot's forward(actions, noise, time), unreduced
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import types
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import torch
from safetensors.torch import save_file
from torch import nn

from smolvla.policy.testing import TINY_SMOLVLM_CONFIG

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "tests" / "fixtures" / "lerobot_smolvla_golden.safetensors"
CHUNK, STEPS, SEED = 10, 10, 0
# LeRobot's SmolVLAConfig fields read by VLAFlowMatching; num_vlm_layers=4 of the backbone's 8 = our "tiny".
LEROBOT_CONFIG = {
    "freeze_vision_encoder": True, "train_expert_only": True, "load_vlm_weights": False,
    "attention_mode": "cross_attn", "num_expert_layers": -1, "num_vlm_layers": 4, "self_attn_every_n_layers": 2,
    "expert_width_multiplier": 0.75, "device": "cpu", "max_state_dim": 32, "max_action_dim": 32,
    "train_state_proj": True, "add_image_special_tokens": False, "prefix_length": -1, "compile_model": False,
    "rtc_config": None, "chunk_size": CHUNK, "min_period": 4e-3, "max_period": 4.0, "use_cache": True,
    "num_steps": STEPS,
}  # fmt: skip


def import_lerobot_modeling(src: str) -> types.ModuleType:
    """lerobot.policies.smolvla.modeling_smolvla from the unpacked wheel(s) on `src` (os.pathsep-separated).

    The package __init__s of lerobot.policies import every policy and their extras; they are replaced by
    empty modules, and the few names modeling_smolvla imports from them by stand-ins it never calls here.
    """
    sys.path[:0] = src.split(os.pathsep)
    import lerobot

    root = os.path.dirname(lerobot.__file__)

    def module(name: str, path: str | None = None, **attrs) -> None:
        m = types.ModuleType(name)
        if path is not None:
            m.__path__ = [path]
        m.__dict__.update(attrs)
        sys.modules[name] = m

    module("lerobot.policies", f"{root}/policies")
    module("lerobot.policies.smolvla", f"{root}/policies/smolvla")
    module("lerobot.policies.common", f"{root}/policies/common")
    module("lerobot.policies.pretrained", PreTrainedPolicy=nn.Module)
    module("lerobot.policies.rtc", f"{root}/policies/rtc")
    module("lerobot.policies.rtc.modeling_rtc", RTCProcessor=object)
    module("lerobot.policies.utils", populate_queues=None)
    module("lerobot.policies.smolvla.configuration_smolvla", SmolVLAConfig=object)
    from lerobot.policies.smolvla import modeling_smolvla, smolvlm_with_expert

    # The tiny backbone dir has no processor files: LeRobot only reads two special-token ids from it.
    tok = SimpleNamespace(fake_image_token_id=1, global_image_token_id=2)
    processor = SimpleNamespace(from_pretrained=lambda *a, **k: SimpleNamespace(tokenizer=tok))
    smolvlm_with_expert.AutoProcessor = processor
    return modeling_smolvla


def _crop_keep_first(cache, max_length: int) -> None:
    # lerobot 0.6.1 calls DynamicCache.crop(prefix_len) with transformers 4.x semantics (keep the first n);
    # transformers 5 reads a positive length differently, so the 4.x behaviour is restored for this run.
    for layer in cache.layers:
        if layer.keys is not None and layer.keys.numel() and layer.keys.shape[-2] > max_length:
            layer.keys, layer.values = layer.keys[..., :max_length, :], layer.values[..., :max_length, :]


def fixed_inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    vocab = TINY_SMOLVLM_CONFIG["text_config"]["vocab_size"]
    lang_masks = torch.ones(2, 7, dtype=torch.bool)
    lang_masks[0, -3:] = False  # padded language in element 0
    return {
        "images": torch.rand(2, 2, 3, 64, 64, generator=g) * 2 - 1,
        "image_masks": torch.tensor([[True, True], [True, False]]),  # element 1's second camera is absent
        "lang_tokens": torch.randint(0, vocab, (2, 7), generator=g),
        "lang_masks": lang_masks,
        "state": torch.randn(2, 32, generator=g),
        "noise": torch.randn(2, CHUNK, 32, generator=g),
        "actions": torch.randn(2, CHUNK, 32, generator=g),
        "time": torch.tensor([0.3, 0.85]),
    }


@torch.no_grad()
def lerobot_golden(modeling: types.ModuleType, workdir: Path) -> dict[str, torch.Tensor]:
    """The golden tensors (see the module docstring), computed by LeRobot's VLAFlowMatching."""
    import transformers

    transformers.DynamicCache.crop = _crop_keep_first
    torch.manual_seed(SEED)
    config = transformers.SmolVLMConfig(**TINY_SMOLVLM_CONFIG)
    transformers.SmolVLMForConditionalGeneration(config).save_pretrained(workdir)
    lr = modeling.VLAFlowMatching(SimpleNamespace(vlm_model_name=str(workdir), **LEROBOT_CONFIG)).float().eval()
    for name, p in lr.named_parameters():  # larger-than-default weights so every path moves the outputs
        p.copy_((1 + 0.1 * torch.randn_like(p) if "norm" in name else 0.08 * torch.randn_like(p)).half().float())
    weights = {f"weights.model.{k}": v.half() for k, v in lr.state_dict().items() if not k.endswith("lm_head.weight")}
    x = fixed_inputs()
    cams, cam_masks = list(x["images"].unbind(1)), list(x["image_masks"].unbind(1))
    obs = (cams, cam_masks, x["lang_tokens"], x["lang_masks"], x["state"])
    actions = lr.sample_actions(*obs, noise=x["noise"].clone())
    loss = lr.forward(*obs, x["actions"], noise=x["noise"].clone(), time=x["time"].clone())
    inputs = {f"inputs.{k}": v for k, v in x.items()}
    return weights | inputs | {"outputs.actions": actions, "outputs.loss": loss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"safetensors path (default {DEFAULT_OUT})")
    args = parser.parse_args()
    src = os.environ.get("SMOLVLA_LEROBOT_SRC")
    if not src:
        sys.exit("set SMOLVLA_LEROBOT_SRC to the unpacked lerobot 0.6.1 wheel and its deps (see this file's docstring)")
    modeling = import_lerobot_modeling(src)
    version = metadata.version("lerobot")
    if version != "0.6.1":
        sys.exit(f"expected lerobot 0.6.1 on SMOLVLA_LEROBOT_SRC, found {version}")
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tensors = lerobot_golden(modeling, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(args.out))
    sidecar = {
        "lerobot_version": version,
        "torch_version": torch.__version__,
        "transformers_version": metadata.version("transformers"),
        "lerobot_code": "lerobot.policies.smolvla.modeling_smolvla.VLAFlowMatching (fp32, CPU)",
        "command": "SMOLVLA_LEROBOT_SRC=<lerobot 0.6.1 wheel>:<its deps> " + shlex.join(["python", *sys.argv]),
        "seed": SEED,
        "lerobot_config": LEROBOT_CONFIG,
        "backbone_config": TINY_SMOLVLM_CONFIG,
    }
    args.out.with_suffix(".json").write_text(json.dumps(sidecar, indent=1) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) and {args.out.with_suffix('.json').name}")


if __name__ == "__main__":
    main()
