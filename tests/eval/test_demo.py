"""`smolvla demo` and its recipe, without the committed asset: a tiny random policy, one short episode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_helpers import require_metaworld, save_tiny_metaworld_policy
from typer.testing import CliRunner

import smolvla.envs  # noqa: F401  (selects the headless GL backend before any simulator import)
from smolvla.cli import demo as demo_cli
from smolvla.cli.main import app
from smolvla.eval.recipe import DemoRecipe, demo_model_config, train_config, write_init_checkpoint
from smolvla.policy.checkpoint import load_policy


@pytest.mark.sim
def test_quick_demo_runs_async_and_sync_through_the_engine(tmp_path):
    require_metaworld()
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out), "--fps", "100"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["meta"]["policy"].startswith("random tiny policy")
    assert set(report["engine"]) == {"async", "sync"}
    for mode, s in report["engine"].items():
        assert s["episodes"] == 1 and s["chunks"] >= 1, mode
        assert s["inference_per_chunk"]["n"] >= 1 and s["inference_per_chunk"]["median_s"] > 0
    (episode,) = report["episodes"]
    assert episode["env_name"] == "metaworld/drawer-close-v3" and episode["seed"] == 1000 and episode["steps"] <= 12
    assert len(report["sync_episodes"]) == 1
    assert (out / "success.png").is_file() and list((out / "videos").glob("*.mp4"))
    assert "inference/chunk median" in result.output and "async:" in result.output and "sync:" in result.output


def test_resolve_policy_prefers_the_asset_and_trains_when_missing(tmp_path, monkeypatch):
    asset = save_tiny_metaworld_policy(tmp_path / "asset")
    (asset / "provenance.json").write_text(json.dumps({"train_steps": 7}))
    policy, meta = demo_cli._resolve_policy(asset, retrain=False, out=tmp_path / "out", workers=1)
    assert meta == {"policy": str(asset), "trained_here": False, "provenance": {"train_steps": 7}}
    assert policy.config.camera_keys == ("observation.images.corner2",)

    calls = []
    monkeypatch.setattr(
        "smolvla.eval.recipe.train_demo_policy", lambda recipe, work_dir, workers: calls.append(work_dir) or asset
    )
    _, meta = demo_cli._resolve_policy(tmp_path / "missing", retrain=False, out=tmp_path / "out", workers=1)
    assert meta["trained_here"] and calls == [tmp_path / "out" / "recipe"]
    _, meta = demo_cli._resolve_policy(asset, retrain=True, out=tmp_path / "out", workers=1)
    assert meta["trained_here"] and len(calls) == 2


def test_demo_config_errors(tmp_path):
    from smolvla.eval.demo import DemoConfig

    with pytest.raises(ValueError, match="env_names is empty"):
        DemoConfig(env_names=(), out_dir=tmp_path)
    with pytest.raises(ValueError, match="episodes >= 1 and max_steps >= 1, got 0 and 10"):
        DemoConfig(env_names=("metaworld/reach-v3",), out_dir=tmp_path, episodes=0, max_steps=10)


def test_init_checkpoint_round_trip(tmp_path):
    path = write_init_checkpoint(tmp_path / "init", seed=3)
    policy = load_policy(path)
    assert policy.config.model == demo_model_config()
    assert (policy.config.state_dim, policy.config.action_dim, policy.config.n_action_steps) == (4, 4, 30)
    params = sum(p.numel() for p in policy.parameters())
    assert 3_000_000 < params < 4_500_000
    again = load_policy(write_init_checkpoint(tmp_path / "again", seed=3))
    assert all((a == b).all() for a, b in zip(policy.parameters(), again.parameters(), strict=True))
    # The demo instructions fit the byte tokenizer's budget (one token per byte plus the newline).
    assert max(len(t) for t in ("press the button down from above", "push the drawer shut")) + 1 <= 40


def test_train_config_matches_the_script(tmp_path):
    recipe = DemoRecipe()
    cfg = train_config(recipe, tmp_path / "ds", tmp_path / "init", tmp_path / "run")
    assert cfg.freeze == "full" and cfg.init.kind == "checkpoint" and cfg.init.path == str(tmp_path / "init")
    assert (cfg.batch_size, cfg.steps, cfg.optimizer.lr) == (recipe.batch_size, recipe.train_steps, recipe.lr)
    assert cfg.schedule.warmup_steps == 1000 and [d.root for d in cfg.data.datasets] == [str(tmp_path / "ds")]
    script = (Path(demo_cli.__file__).resolve().parents[3] / "scripts" / "train_demo_policy.sh").read_text()
    for flag, value in (("STEPS", recipe.train_steps), ("BATCH", recipe.batch_size), ("LR", recipe.lr)):
        assert f"{flag}=${{{flag}:-{value}}}" in script
    assert f"EPISODES=${{EPISODES:-{recipe.episodes_per_task}}}" in script
    assert f"TASKS=${{TASKS:-{','.join(recipe.tasks)}}}" in script


@pytest.mark.slow
@pytest.mark.sim
def test_recipe_end_to_end_tiny_budget(tmp_path):
    """The in-process recipe (expert data -> init -> train) at a toy budget; a minute or so."""
    require_metaworld()
    from smolvla.eval.recipe import train_demo_policy

    recipe = DemoRecipe(tasks=("drawer-close-v3",), episodes_per_task=2, train_steps=3, batch_size=2)
    path = train_demo_policy(recipe, tmp_path / "work", workers=1)
    policy = load_policy(path)
    assert policy.config.model == demo_model_config()
    assert (tmp_path / "work" / "dataset" / "meta" / "info.json").is_file()


def test_retrain_reports_progress_from_the_start(tmp_path, monkeypatch, caplog):
    """`demo --retrain` says what it does at once, then shows the expert-data progress (here cut short)."""
    import logging

    def fake_generate(cfg, scratch, progress=None):
        progress(1)
        raise RuntimeError("expert stopped here")

    monkeypatch.setattr("smolvla.envs.datagen.generate", fake_generate)
    caplog.set_level(logging.INFO, logger="smolvla.eval.recipe")
    result = CliRunner().invoke(app, ["demo", "--retrain", "--out", str(tmp_path / "out"), "--workers", "1"])
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0].startswith(f"--retrain: running the demo recipe in {tmp_path / 'out'}")
    assert "expert episodes (2 tasks):   1%" in result.stderr  # 1 of 80 episodes
    assert "recipe 1/2: 80 scripted-expert episodes of button-press-topdown-v3, drawer-close-v3" in caplog.text
    assert result.stderr.strip().splitlines()[-1].startswith("error: unexpected RuntimeError: expert stopped here")
