"""`smolvla train`: options map onto the TrainConfig; a short run from the command line."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from smolvla.cli.train import build_config, register


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:  # keeps `train` a named subcommand
        pass

    return app


def test_options_override_the_preset() -> None:
    cfg = build_config(
        "finetune", ["/a", "/b"], [3.0, 1.0], "lerobot", "/ckpt", None, 5e-5, 2,
        steps=100, batch_size=8, device="cpu", freeze="vision_frozen", resume=False,
    )  # fmt: skip
    assert (cfg.steps, cfg.batch_size, cfg.freeze, cfg.optimizer.lr) == (100, 8, "vision_frozen", 5e-5)
    assert [(d.root, d.weight) for d in cfg.data.datasets] == [("/a", 3.0), ("/b", 1.0)]
    assert (cfg.init.kind, cfg.init.path, cfg.data.num_workers) == ("lerobot", "/ckpt", 2)
    assert cfg.optimizer.betas == (0.9, 0.95) and cfg.schedule.warmup_fraction == 1 / 30  # untouched preset values
    # The preset's schedule follows --steps: warmup 1/30 of the run, decay to its last step.
    sched = cfg.schedule.resolve(cfg.steps)
    assert (sched.warmup_steps, sched.decay_steps) == (3, 100)


def test_schedule_options_override_only_what_is_given() -> None:
    sched = {"warmup_steps": 200, "decay_steps": 4000, "decay_lr": None}
    cfg = build_config("tiny_cpu", ["/a"], schedule=sched)
    assert (cfg.schedule.warmup_steps, cfg.schedule.decay_steps, cfg.schedule.decay_lr) == (200, 4000, 1e-5)
    assert cfg.schedule.resolve(cfg.steps) == cfg.schedule  # explicit values do not follow --steps
    with pytest.raises(ValueError, match=r"decay_steps \(100\) must exceed warmup_steps \(200\)"):
        build_config("tiny_cpu", ["/a"], schedule={"warmup_steps": 200, "decay_steps": 100})
    with pytest.raises(ValueError, match=r"warmup_steps \(300\) must be below decay_steps \(250, the run's steps\)"):
        build_config("tiny_cpu", ["/a"], schedule={"warmup_steps": 300}, steps=250)


def test_task_budget_and_tokenizer_options() -> None:
    cfg = build_config("tiny_cpu", ["/a"], max_task_tokens=64, tokenizer="byte")
    assert (cfg.init.kind, cfg.init.tokenizer, cfg.init.max_task_tokens) == ("scratch", "byte", 64)
    assert build_config("tiny_cpu", ["/a"]).init.max_task_tokens == 48  # the preset's budget
    with pytest.raises(ValueError, match=r"tokenizer='byte' applies to scratch init only"):
        build_config("tiny_cpu", ["/a"], init="checkpoint", init_path="/ckpt", tokenizer="byte")


@pytest.mark.parametrize("preset", ["finetune", "pretrain_mixture"])
def test_presets_that_freeze_need_init(preset, tmp_path) -> None:
    """`--preset finetune` without --init used to train an expert behind a frozen random VLM. It fails at once
    (the dataset path does not even exist: nothing was read)."""
    args = ["train", "--preset", preset, "--dataset", str(tmp_path / "missing")]
    res = CliRunner().invoke(_app(), args, env={"COLUMNS": "300"})
    assert res.exit_code == 2
    assert "init is 'scratch'" in res.output and "--init checkpoint|lerobot|backbone --init-path DIR" in res.output
    assert build_config(preset, ["/a"], init="backbone", init_path="/smolvlm2").init.kind == "backbone"


def test_weights_must_match_datasets() -> None:
    with pytest.raises(typer.BadParameter, match="got 1 --dataset-weight values for 2 --dataset paths"):
        build_config("tiny_cpu", ["/a", "/b"], [1.0])


def test_preset_typo_suggests(tmp_path) -> None:
    res = CliRunner().invoke(_app(), ["train", "--preset", "finetun", "--dataset", str(tmp_path)])
    assert res.exit_code != 0
    assert "did you mean 'finetune'" in res.output


def test_short_run(tiny_dataset, tmp_path) -> None:
    out = tmp_path / "run"
    args = ["train", "--preset", "tiny_cpu", "--dataset", str(tiny_dataset), "--steps", "2", "--batch-size", "4"]
    res = CliRunner().invoke(_app(), [*args, "--output-dir", str(out), "--log-every", "1"])
    assert res.exit_code == 0, res.output
    assert "done: step 2" in res.output
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2]
    assert (out / "checkpoints" / "last" / "pretrained_model" / "model.safetensors").is_file()


def test_aux_env_state_option(tiny_dataset, tmp_path) -> None:
    assert build_config("tiny_cpu", ["/a"], aux_env_state=0.5).aux_env_state == 0.5
    assert build_config("tiny_cpu", ["/a"]).aux_env_state == 0.0  # off unless asked for
    args = ["train", "--preset", "tiny_cpu", "--dataset", str(tiny_dataset), "--steps", "2", "--aux-env-state", "1"]
    res = CliRunner().invoke(_app(), [*args, "--output-dir", str(tmp_path / "run")])
    # This dataset recorded no object positions: the run stops before training, naming the dataset.
    assert res.exit_code != 0
    assert "needs 'observation.environment_state' in every dataset" in str(res.exception or res.output)
