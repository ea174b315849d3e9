"""The community-style corpus: how a variant rewrites episodes (cameras, frame rate, vague tasks), its mixture
file, and one real variant written end to end (Meta-World, a few seconds)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from smolvla.data.meta import load_meta
from smolvla.data.mixture import load_mixture
from smolvla.data.relabel import RuleAnnotator, relabel_dataset
from smolvla.envs.corpus import Variant, make_corpus, mixture_file, rewrite_episode, vague_names
from smolvla.envs.rollout import Episode


def _episode(fps: int = 30, steps: int = 6) -> Episode:
    frames = {
        "observation.images.top": np.zeros((steps, 8, 8, 3), np.uint8),
        "observation.images.wrist": np.ones((steps, 8, 8, 3), np.uint8),
        "observation.state": np.arange(steps * 6, dtype=np.float32).reshape(steps, 6),
        "action": np.arange(steps * 6, dtype=np.float32).reshape(steps, 6),
    }
    return Episode("so101/pick-place", "pick up the cube", 0, fps, frames, np.arange(steps, dtype=np.float32), True)


def test_a_variant_renames_drops_and_subsamples():
    v = Variant("v", ("so101/pick-place",), {"top": "laptop", "wrist": None}, {"laptop": "image1"}, frame_stride=2)
    ep = rewrite_episode(_episode(), v, "Hold")
    assert sorted(ep.frames) == ["action", "observation.images.laptop", "observation.state"]
    assert (ep.fps, ep.task, len(ep.frames["action"]), ep.rewards.tolist()) == (15, "Hold", 3, [0.0, 2.0, 4.0])
    assert ep.frames["observation.state"][1, 0] == 12  # frame 2 of the original
    with pytest.raises(ValueError, match=r"fps 25 is not divisible by frame_stride 2"):
        rewrite_episode(_episode(fps=25), v, "Hold")
    with pytest.raises(ValueError, match=r"env camera 'wrist' is not in its cameras"):
        rewrite_episode(_episode(), Variant("w", (), {"top": "up"}, {"up": "image1"}), "x")
    with pytest.raises(ValueError, match=r"views \['up'\] must name the recorded cameras \['laptop'\]"):
        Variant("bad", (), {"top": "laptop"}, {"up": "image1"})


def test_vague_names_and_mixture_file():
    assert vague_names(["pick"]) == {"pick": "Hold"}
    assert vague_names(["pick", "stack"]) == {"pick": "task 1", "stack": "task 2"}
    a = Variant("a", (), {"top": "laptop"}, {"laptop": "image1"}, weight=2.0)
    b = Variant("b", (), {"top": "up"}, {"up": "image1"})
    assert mixture_file([a, b], {"a"}) == {"datasets": [{"root": "a", "weight": 2.0, "cameras": {"laptop": "image1"}}]}


def test_a_metaworld_variant_end_to_end_with_relabel(tmp_path, require_sim):
    require_sim("metaworld")
    v = Variant("mw_hold", ("metaworld/reach-v3",), {"corner2": "up"}, {"up": "image1"}, image_size=32, vague=True)
    missing = Variant("later", ("so101/not-yet",), {"top": "up"}, {"up": "image1"})
    reports = make_corpus(tmp_path, [v, missing], episodes=1)
    assert reports[1].skipped == "tasks not registered: ['so101/not-yet']"
    meta = load_meta(tmp_path / "mw_hold")
    assert meta.camera_keys == ["observation.images.up"] and meta.tasks == ["Hold"]
    rules = json.loads((tmp_path / "relabel_rules" / "mw_hold.json").read_text())
    assert list(rules) == ["Hold"] and rules["Hold"] == reports[0].tasks[0]
    relabel_dataset(tmp_path / "mw_hold", RuleAnnotator(rules))  # what `smolvla relabel --rules` runs
    assert load_meta(tmp_path / "mw_hold").tasks == [rules["Hold"]]
    mix = load_mixture(tmp_path / "mix.json")
    assert [s.root for s in mix.datasets] == [str((tmp_path / "mw_hold").resolve())]
    report = json.loads((tmp_path / "corpus_report.json").read_text())
    assert report["variants"][0]["episodes"] == 1 and report["seconds"] > 0


def test_corpus_scenes_are_not_evaluation_scenes():
    from smolvla.envs.corpus import CORPUS_SEED, DEFAULT_VARIANTS
    from smolvla.envs.registry import HELD_OUT_SEED

    # make_corpus gives variant i the seeds CORPUS_SEED + 10,000 i onwards (at most 4 x episodes attempts).
    firsts = [CORPUS_SEED + 10_000 * i for i in range(len(DEFAULT_VARIANTS))]
    assert min(firsts) > HELD_OUT_SEED + 10_000  # datagen's seeds start at 0, eval's at HELD_OUT_SEED
