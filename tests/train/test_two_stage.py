"""The two-stage recipe in miniature (what scripts/pretrain_mixture.sh and scripts/finetune_so101.sh run):
pretrain a tiny policy on a mixture of two datasets with different cameras and state sizes, then fine-tune it
on a third dataset of another layout from the stage-1 checkpoint."""

from __future__ import annotations

import torch
import typer
from typer.testing import CliRunner

from smolvla.cli.train import register
from smolvla.data.mixture import VIEWS
from smolvla.policy.checkpoint import load_policy
from smolvla.types import ACTION, OBS_STATE

from .mixture_helpers import features, write_layouts, write_mixture_file
from .train_helpers import write_tiny_dataset

COMMON = ["--steps", "3", "--batch-size", "4", "--log-every", "1", "--num-threads", "1", "--cache-mb", "64"]


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        pass

    return app


def _train(args: list[str]) -> None:
    res = CliRunner().invoke(_app(), ["train", *args, *COMMON], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output


def test_pretrain_on_a_mixture_then_finetune_on_another_layout(tmp_path) -> None:
    write_layouts(tmp_path)
    mix = write_mixture_file(tmp_path)
    stage1 = tmp_path / "stage1"
    _train(["--preset", "pretrain_mixture", "--freeze", "full", "--model-preset", "tiny", "--max-task-tokens", "24",
            "--mixture", str(mix), "--output-dir", str(stage1), "--augment-shift", "2"])  # fmt: skip
    pre = load_policy(stage1 / "checkpoints" / "last" / "pretrained_model")
    assert (pre.config.camera_keys, pre.config.state_dim, pre.config.action_dim) == (VIEWS, 32, 32)
    assert pre.config.norm_modes() == {OBS_STATE: "identity", ACTION: "identity"}

    # Stage 2: an SO-style dataset (wrist listed before top on purpose) with 5 joints.
    so = write_tiny_dataset(tmp_path / "so", episodes=2, length=10, seed=3, features=features(("wrist", "top"), 5))
    stage2 = tmp_path / "stage2"
    init = ["--init", "checkpoint", "--init-path", str(stage1 / "checkpoints" / "last" / "pretrained_model")]
    _train(["--preset", "finetune", *init, "--dataset", str(so), "--output-dir", str(stage2)])
    tuned = load_policy(stage2 / "checkpoints" / "last" / "pretrained_model")
    cfg = tuned.config
    # The dataset's own layout, cameras in the order of their standard views (top = image1, wrist = image2).
    assert cfg.camera_keys == ("observation.images.top", "observation.images.wrist")
    assert (cfg.state_dim, cfg.action_dim, cfg.norm_modes()[ACTION]) == (5, 5, "mean_std")
    assert cfg.model == pre.config.model and tuned.tokenizer.to_json() == pre.tokenizer.to_json()
    # finetune freezes the VLM: its weights are exactly stage 1's (so stage 1's weights were loaded), while
    # the action expert trained on.
    pre_w, tuned_w = pre.model.state_dict(), tuned.model.state_dict()
    vlm = [k for k in pre_w if k.startswith(("vision.", "connector.", "decoder."))]
    assert vlm and all(torch.equal(pre_w[k], tuned_w[k]) for k in vlm)
    assert any(not torch.equal(pre_w[k], tuned_w[k]) for k in pre_w if k not in vlm)
    obs = {"observation.images.top": torch.rand(1, 3, 32, 32), "observation.images.wrist": torch.rand(1, 3, 32, 32),
           OBS_STATE: torch.randn(1, 5), "task": ["pick"]}  # fmt: skip
    assert tuned.predict_action_chunk(obs).shape == (1, cfg.chunk_size, 5)
