"""Importing LeRobot SmolVLA checkpoints (both stats layouts) and HF backbone weights, strictly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from lerobot_fixture import write_lerobot_checkpoint
from safetensors.torch import load_file, save_file

from smolvla.model.config import get_config
from smolvla.policy.hf_backbone import load_backbone_weights
from smolvla.policy.lerobot import load_lerobot_policy, policy_config_from_lerobot
from smolvla.policy.normalize import NormStats
from smolvla.policy.policy import SmolVLAPolicy
from smolvla.policy.testing import make_fake_batch
from smolvla.policy.tokenizer import TaskTokenizer

CAMS = ["observation.images.top", "observation.images.wrist"]


def lerobot_config(backbone: Path, **overrides) -> dict:
    cfg = {
        "type": "smolvla",
        "n_obs_steps": 1,
        "chunk_size": 10,
        "n_action_steps": 4,
        "num_steps": 3,
        "vlm_model_name": str(backbone),
        "num_vlm_layers": 4,
        "resize_imgs_with_padding": [64, 64],
        "empty_cameras": 1,
        "tokenizer_max_length": 48,
        "input_features": {
            "observation.state": {"type": "STATE", "shape": [6]},
            CAMS[0]: {"type": "VISUAL", "shape": [3, 48, 64]},
            CAMS[1]: {"type": "VISUAL", "shape": [3, 48, 64]},
            "observation.images.empty_camera_0": {"type": "VISUAL", "shape": [3, 480, 640]},
        },
        "output_features": {"action": {"type": "ACTION", "shape": [6]}},
        "normalization_mapping": {"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"},
        "optimizer_lr": 1e-4,  # training-only fields are read past
    }
    return cfg | overrides


def _source_policy(tiny_hf_dir: Path, **overrides) -> SmolVLAPolicy:
    """The policy a LeRobot checkpoint is written from: HF backbone weights + a random expert."""
    torch.set_num_threads(1)
    config, _ = policy_config_from_lerobot(lerobot_config(tiny_hf_dir, **overrides))
    gen = torch.Generator().manual_seed(0)
    stats = NormStats(
        {
            "observation.state": {"mean": torch.randn(6, generator=gen), "std": torch.rand(6, generator=gen) + 0.5},
            "action": {"mean": torch.randn(6, generator=gen), "std": torch.rand(6, generator=gen) + 0.5},
        }
    )
    torch.manual_seed(0)
    policy = SmolVLAPolicy(config, stats, TaskTokenizer.from_file(tiny_hf_dir, 48))
    load_backbone_weights(policy.model, tiny_hf_dir, config.model)
    return policy.eval()


@pytest.fixture(scope="module")
def source(tiny_hf_dir: Path) -> SmolVLAPolicy:
    return _source_policy(tiny_hf_dir)


def _same_predictions(a: SmolVLAPolicy, b: SmolVLAPolicy) -> None:
    batch = make_fake_batch(a.config)
    noise = torch.randn(2, 10, 32, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(
        a.predict_action_chunk(batch, noise), b.predict_action_chunk(batch, noise), rtol=0, atol=0
    )


def test_config_mapping(tiny_hf_dir: Path, source: SmolVLAPolicy) -> None:
    cfg = source.config
    assert cfg.camera_keys == tuple(CAMS) and cfg.empty_cameras == 1
    assert (cfg.state_dim, cfg.action_dim, cfg.n_action_steps, cfg.chunk_size) == (6, 6, 4, 10)
    tiny = get_config("tiny")
    assert (cfg.model.vision, cfg.model.decoder, cfg.model.connector) == (tiny.vision, tiny.decoder, tiny.connector)
    assert cfg.model.expert_mlp == 256  # LeRobot's expert MLP rounds to a multiple of 256
    assert cfg.model.num_steps == 3 and cfg.model.max_lang_tokens == 48


def test_backbone_weights_equal_the_hf_file(tiny_hf_dir: Path, source: SmolVLAPolicy) -> None:
    raw = load_file(str(tiny_hf_dir / "model.safetensors"))
    sd = source.model.state_dict()
    assert torch.equal(
        sd["vision.encoder.layers.1.mlp.fc2.weight"], raw["model.vision_model.encoder.layers.1.mlp.fc2.weight"]
    )
    assert torch.equal(
        sd["text.layers.3.self_attn.k_proj.weight"], raw["model.text_model.layers.3.self_attn.k_proj.weight"]
    )


@pytest.mark.parametrize("layout", ["processor", "legacy"])
def test_import_gives_identical_predictions(source: SmolVLAPolicy, tiny_hf_dir: Path, tmp_path: Path, layout) -> None:
    path = write_lerobot_checkpoint(source, tmp_path / "ckpt", lerobot_config(tiny_hf_dir), layout=layout)
    loaded = load_lerobot_policy(path)
    assert loaded.config == source.config
    assert loaded.stats.allclose(source.stats, rtol=0)
    assert loaded.tokenizer is not None  # found in the local backbone dir
    _same_predictions(loaded, source)


def test_dataset_prefixed_stats_refused_unless_renamed(source, tiny_hf_dir: Path, tmp_path: Path) -> None:
    path = write_lerobot_checkpoint(source, tmp_path / "c", lerobot_config(tiny_hf_dir), stats_prefix="so100.buffer.")
    with pytest.raises(
        ValueError, match=r"unexpected normalisation stats keys \[.*'so100.buffer.observation.state.mean'"
    ):
        load_lerobot_policy(path)
    _same_predictions(load_lerobot_policy(path, stats_rename={"so100.buffer.": ""}), source)


def test_legacy_dataset_prefixed_buffers_refused(source, tiny_hf_dir: Path, tmp_path: Path) -> None:
    path = write_lerobot_checkpoint(source, tmp_path / "c", lerobot_config(tiny_hf_dir), layout="legacy")
    w = load_file(str(path / "model.safetensors"))
    for stat in ("mean", "std"):
        w[f"normalize_inputs.so100-red_buffer_observation_state.{stat}"] = w.pop(
            f"normalize_inputs.buffer_observation_state.{stat}"
        )
    save_file(w, str(path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"normalize_inputs.so100-red_buffer_observation_state.mean"):
        load_lerobot_policy(path)
    fixed = load_lerobot_policy(path, stats_rename={"normalize_inputs.so100-red_buffer_": "normalize_inputs.buffer_"})
    _same_predictions(fixed, source)


def test_torch_compile_prefix_is_renamed_like_lerobot(source, tiny_hf_dir: Path, tmp_path: Path) -> None:
    # LeRobot's loader maps "model._orig_mod." (weights saved from a torch.compile'd model) to "model.".
    path = write_lerobot_checkpoint(source, tmp_path / "c", lerobot_config(tiny_hf_dir))
    w = load_file(str(path / "model.safetensors"))
    compiled = {("model._orig_mod." + k[6:] if k.startswith("model.") else k): v for k, v in w.items()}
    save_file(compiled, str(path / "model.safetensors"))
    _same_predictions(load_lerobot_policy(path), source)
    compiled["model.state_proj.bias"] = w["model.state_proj.bias"].clone()
    save_file(compiled, str(path / "model.safetensors"))
    with pytest.raises(
        ValueError, match="'model._orig_mod.state_proj.bias' and 'model.state_proj.bias' both map to 'model.state_proj"
    ):
        load_lerobot_policy(path)


def test_processor_norm_map_must_agree_with_config(source, tiny_hf_dir: Path, tmp_path: Path) -> None:
    # LeRobot normalises with the processor file's norm_map, so a disagreeing config.json is refused.
    path = write_lerobot_checkpoint(source, tmp_path / "c", lerobot_config(tiny_hf_dir))
    spec = json.loads((path / "policy_postprocessor.json").read_text())
    spec["steps"][0]["config"]["norm_map"] = {"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MIN_MAX"}
    (path / "policy_postprocessor.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=r"norm_map .* disagrees with config.json.*'ACTION': 'MIN_MAX'"):
        load_lerobot_policy(path)
    del spec["steps"][0]["config"]["norm_map"]["STATE"]  # a missing type means identity in LeRobot
    spec["steps"][0]["config"]["norm_map"]["ACTION"] = "MEAN_STD"
    (path / "policy_postprocessor.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=r"'STATE': 'identity'"):
        load_lerobot_policy(path)
    pre = json.loads((path / "policy_preprocessor.json").read_text())
    pre["steps"][-1]["config"]["normalize_observation_keys"] = ["observation.environment_state"]
    (path / "policy_preprocessor.json").write_text(json.dumps(pre))
    with pytest.raises(ValueError, match=r"normalize_observation_keys .* excludes 'observation.state'"):
        load_lerobot_policy(path)


def test_non_positive_num_vlm_layers_keeps_every_layer(tiny_hf_dir: Path) -> None:
    # LeRobot truncates the backbone's text layers only when num_vlm_layers > 0.
    for n in (0, -1):
        config, _ = policy_config_from_lerobot(lerobot_config(tiny_hf_dir, num_vlm_layers=n))
        assert config.model.decoder.layers == config.model.decoder.total_layers == 8
    known = lerobot_config(tiny_hf_dir, vlm_model_name="HuggingFaceTB/SmolVLM2-500M-Video-Instruct", num_vlm_layers=-1)
    known["resize_imgs_with_padding"] = [512, 512]
    assert policy_config_from_lerobot(known)[0].model.decoder.layers == 32
    with pytest.raises(ValueError, match="num_expert_layers=4 != the 8 kept VLM layers"):
        policy_config_from_lerobot(lerobot_config(tiny_hf_dir, num_vlm_layers=-1, num_expert_layers=4))


def test_from_pretrained_imports_a_lerobot_checkpoint(source, tiny_hf_dir: Path, tmp_path: Path) -> None:
    # LeRobot users call from_pretrained on LeRobot's own directories first: its config.json says "type".
    path = write_lerobot_checkpoint(source, tmp_path / "c", lerobot_config(tiny_hf_dir))
    loaded = SmolVLAPolicy.from_pretrained(path)
    assert loaded.config == source.config and loaded.tokenizer is not None
    _same_predictions(loaded, source)
    ours = tmp_path / "ours"
    loaded.save_pretrained(ours)
    with pytest.raises(ValueError, match="is not a LeRobot checkpoint; ours carry their own tokenizer"):
        SmolVLAPolicy.from_pretrained(ours, tokenizer_path=tiny_hf_dir)


def test_num_vlm_layers_above_the_backbones_keeps_every_layer(tiny_hf_dir: Path, tmp_path: Path) -> None:
    # LeRobot slices layers[:num_vlm_layers], which keeps all 8 of the tiny backbone for 12: so do we.
    config, _ = policy_config_from_lerobot(lerobot_config(tiny_hf_dir, num_vlm_layers=12))
    assert config.model.decoder.layers == config.model.decoder.total_layers == 8
    wide = _source_policy(tiny_hf_dir, num_vlm_layers=12)
    path = write_lerobot_checkpoint(wide, tmp_path / "c", lerobot_config(tiny_hf_dir, num_vlm_layers=12))
    loaded = SmolVLAPolicy.from_pretrained(path)
    assert len(loaded.model.text.layers) == len(loaded.model.expert.layers) == 8
    _same_predictions(loaded, wide)


def test_tokenizer_from_checkpoint_dir_or_argument(source, tiny_hf_dir: Path, tmp_path: Path) -> None:
    # A backbone dir with config.json only (LeRobot checkpoints carry every weight but no tokenizer).
    backbone = tmp_path / "backbone"
    backbone.mkdir()
    (backbone / "config.json").write_text((tiny_hf_dir / "config.json").read_text())
    path = write_lerobot_checkpoint(source, tmp_path / "c", lerobot_config(backbone))
    bare = SmolVLAPolicy.from_pretrained(path)
    assert bare.tokenizer is None
    with pytest.raises(ValueError, match="this policy has no tokenizer: pass tokenizer_path when loading it"):
        bare.predict_action_chunk(make_fake_batch(bare.config))
    _same_predictions(SmolVLAPolicy.from_pretrained(path, tokenizer_path=tiny_hf_dir / "tokenizer.json"), source)
    (path / "tokenizer.json").write_text((tiny_hf_dir / "tokenizer.json").read_text())
    _same_predictions(SmolVLAPolicy.from_pretrained(path), source)


@pytest.mark.parametrize("escape", ["absolute", "dotdot", "symlink"])
@pytest.mark.parametrize("reader", ["load", "inspect"])
def test_processor_state_file_must_stay_in_the_checkpoint(
    source, tiny_hf_dir: Path, tmp_path: Path, escape: str, reader: str
) -> None:
    # A processor JSON is read from the checkpoint: its state_file must not reach a file outside it.
    path = write_lerobot_checkpoint(source, tmp_path / "c", lerobot_config(tiny_hf_dir))
    pre = json.loads((path / "policy_preprocessor.json").read_text())
    step = pre["steps"][-1]
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes((path / step["state_file"]).read_bytes())  # valid stats: only the location is wrong
    if escape == "symlink":
        (path / "link.safetensors").symlink_to(outside)
    step["state_file"] = {"absolute": str(outside), "dotdot": "../outside.safetensors"}.get(escape, "link.safetensors")
    (path / "policy_preprocessor.json").write_text(json.dumps(pre))
    match = r"is absolute; only paths inside" if escape == "absolute" else r"escapes .*c \(it resolves to .*outside"
    with pytest.raises(ValueError, match=match):
        if reader == "load":
            load_lerobot_policy(path)
        else:
            from smolvla.policy.inspect import inspect_checkpoint

            inspect_checkpoint(path)


def test_weight_errors_list_keys(source, tiny_hf_dir: Path, tmp_path: Path) -> None:
    path = write_lerobot_checkpoint(source, tmp_path / "c", lerobot_config(tiny_hf_dir))
    w = load_file(str(path / "model.safetensors"))
    del w["model.vlm_with_expert.lm_expert.norm.weight"]
    w["model.extra_proj.weight"] = w["model.state_proj.weight"].clone()
    save_file(w, str(path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"unexpected keys .*\['model.extra_proj.weight'\]"):
        load_lerobot_policy(path)
    del w["model.extra_proj.weight"]
    save_file(w, str(path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"missing keys \(1\): expert.norm.weight"):
        load_lerobot_policy(path)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"attention_mode": "self_attn"}, "attention_mode='self_attn' is not supported"),
        ({"resize_imgs_with_padding": [224, 224]}, r"must equal the vision image size \[64, 64\]"),
        ({"vlm_model_name": "someone/unknown-vlm"}, "neither a local backbone directory nor a known backbone"),
        ({"normalization_mapping": {"STATE": "MIN_MAX"}}, "STATE normalisation 'MIN_MAX' is not supported"),
        ({"type": "pi0"}, "policy type is 'pi0'"),
        ({"prefix_length": 300}, r"prefix_length=300 \(fixed-length prefix padding\) is not supported"),
        ({"add_image_special_tokens": True}, "add_image_special_tokens=True is not supported"),
        ({"n_obs_steps": 2}, "n_obs_steps=2 is not supported"),
        ({"output_features": {}}, "output_features must be exactly"),
    ],
)
def test_unsupported_configs(tiny_hf_dir: Path, override: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        policy_config_from_lerobot(lerobot_config(tiny_hf_dir, **override))


def test_known_backbone_resolves_without_download(tiny_hf_dir: Path) -> None:
    cfg = lerobot_config(tiny_hf_dir, vlm_model_name="HuggingFaceTB/SmolVLM2-500M-Video-Instruct", num_vlm_layers=16)
    cfg["resize_imgs_with_padding"] = [512, 512]
    config, backbone = policy_config_from_lerobot(cfg)
    assert backbone is None and config.model.decoder == get_config("smolvla_base").decoder


def test_missing_state_file_and_normaliser_step(source, tiny_hf_dir: Path, tmp_path: Path) -> None:
    path = write_lerobot_checkpoint(source, tmp_path / "c", lerobot_config(tiny_hf_dir))
    (path / "policy_preprocessor_step_5_normalizer_processor.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="policy_preprocessor_step_5_normalizer_processor"):
        load_lerobot_policy(path)
    path = write_lerobot_checkpoint(source, tmp_path / "d", lerobot_config(tiny_hf_dir))
    steps = json.loads((path / "policy_postprocessor.json").read_text())
    steps["steps"] = []
    (path / "policy_postprocessor.json").write_text(json.dumps(steps))
    with pytest.raises(ValueError, match="expected one 'unnormalizer_processor' step, found 0"):
        load_lerobot_policy(path)


def test_malformed_checkpoint_json_is_named(source, tiny_hf_dir: Path, tmp_path: Path) -> None:
    path = write_lerobot_checkpoint(source, tmp_path / "c", lerobot_config(tiny_hf_dir))
    (path / "policy_postprocessor.json").write_text('{"steps": {}}')
    with pytest.raises(ValueError, match=r"policy_postprocessor.json: expected a JSON object whose 'steps' is a list"):
        load_lerobot_policy(path)
    (path / "config.json").write_text("[]")
    with pytest.raises(ValueError, match=r"config.json: expected a JSON object \(LeRobot SmolVLAConfig\), got list"):
        load_lerobot_policy(path)
    (path / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing checkpoint file .*config.json"):
        load_lerobot_policy(path)


def test_inspect_lerobot_checkpoint(source, tiny_hf_dir: Path, tmp_path: Path) -> None:
    from smolvla.policy.inspect import inspect_checkpoint

    path = write_lerobot_checkpoint(source, tmp_path / "c", lerobot_config(tiny_hf_dir), layout="legacy")
    info = inspect_checkpoint(path)
    d = source.config.model.decoder
    assert info["format"] == "lerobot"
    # Counted as stored, including the unused lm_head LeRobot keeps.
    assert info["parameters"] == sum(p.numel() for p in source.model.parameters()) + d.vocab_size * d.hidden
    assert "normalize_inputs.buffer_observation_state.mean" in info["stats_keys"]
