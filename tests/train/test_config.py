"""Training presets, typo suggestions, validation and the JSON round trip."""

from __future__ import annotations

import pytest

from smolvla.train.config import (
    DataConfig,
    DatasetSpec,
    InitConfig,
    TrainConfig,
    check_pretrained_start,
    get_train_config,
)


def test_paper_defaults() -> None:
    cfg = get_train_config("finetune")
    assert cfg.optimizer.lr == 1e-4
    assert cfg.optimizer.betas == (0.9, 0.95)
    assert cfg.optimizer.eps == 1e-8
    assert cfg.optimizer.weight_decay == 1e-10
    assert cfg.optimizer.grad_clip_norm == 10.0
    sched = cfg.schedule.resolve(cfg.steps)
    assert (sched.warmup_steps, sched.decay_steps, sched.decay_lr) == (1000, 30_000, 2.5e-6)
    assert cfg.batch_size == 64 and cfg.freeze == "expert_only"
    pre = get_train_config("pretrain_mixture")
    assert (pre.batch_size, pre.steps) == (256, 200_000)


def test_typo_suggests_nearest_preset() -> None:
    with pytest.raises(ValueError, match=r"unknown training preset 'tiny_cup'.*did you mean 'tiny_cpu'\?"):
        get_train_config("tiny_cup")
    with pytest.raises(ValueError, match=r"did you mean 'finetune'\?"):
        get_train_config("fintune")


def test_overrides_and_json_round_trip(tmp_path) -> None:
    cfg = get_train_config(
        "tiny_cpu",
        steps=7,
        data=DataConfig(datasets=(DatasetSpec("/a", 2.0), DatasetSpec("/b"))),
        init=InitConfig(kind="checkpoint", path="/ckpt"),
    )
    cfg.to_json(tmp_path / "c.json")
    back = TrainConfig.from_json(tmp_path / "c.json")
    assert back == cfg
    assert back.steps == 7 and back.data.is_mixture


def test_unknown_key_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"unknown TrainConfig keys \['stepz'\]"):
        TrainConfig.from_dict({"stepz": 3})


def test_bf16_on_cpu_is_refused() -> None:
    with pytest.raises(ValueError, match=r"mixed_precision='bf16' needs a CUDA device.*got device='cpu'"):
        TrainConfig(mixed_precision="bf16", device="cpu")


def test_init_path_rules() -> None:
    with pytest.raises(ValueError, match=r"kind='lerobot' needs a path"):
        InitConfig(kind="lerobot")
    with pytest.raises(ValueError, match=r"kind='scratch' takes no path"):
        InitConfig(kind="scratch", path="/x")


def test_bad_numbers() -> None:
    with pytest.raises(ValueError, match=r"TrainConfig.batch_size must be > 0, got 0"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match=r"keep_last_n must be >= 1 or None"):
        TrainConfig(keep_last_n=0)
    with pytest.raises(ValueError, match=r"num_threads must be >= 1 or None \(torch default\), got 0"):
        TrainConfig(num_threads=0)


def test_presets_that_freeze_need_pretrained_weights() -> None:
    """`finetune` freezes the VLM and used to inherit a scratch init: an expert trained behind a frozen
    random tiny VLM. Such a start is refused; with pretrained weights, a full-training scratch run, or a
    resume (weights from the run's checkpoint), it passes."""
    with pytest.raises(ValueError, match=r"freeze='expert_only' keeps the whole VLM .* init is 'scratch'.*--init"):
        check_pretrained_start(get_train_config("finetune"))
    with pytest.raises(ValueError, match=r"freeze='vision_frozen' keeps the vision encoder .*'smolvla_base'"):
        check_pretrained_start(get_train_config("pretrain_mixture"))
    check_pretrained_start(get_train_config("finetune", init=InitConfig(kind="lerobot", path="/ckpt")))
    check_pretrained_start(get_train_config("tiny_cpu"))
    check_pretrained_start(get_train_config("finetune", resume=True))


def test_tokenizer_and_budget_rules() -> None:
    init = get_train_config("tiny_cpu").init
    assert (init.tokenizer, init.max_task_tokens) == ("bpe", 48)
    with pytest.raises(ValueError, match=r"InitConfig.tokenizer: expected one of \['bpe', 'byte'\], got 'bytes'"):
        InitConfig(tokenizer="bytes")
    with pytest.raises(ValueError, match=r"tokenizer='byte' applies to scratch init only"):
        InitConfig(kind="checkpoint", path="/ckpt", tokenizer="byte")
    with pytest.raises(ValueError, match=r"max_task_tokens must be >= 1 or None, got 0"):
        InitConfig(max_task_tokens=0)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        # Literal modes are checked when the config is made, before any data or weights are touched.
        (
            {"backend": "accelerat"},
            r"^TrainConfig.backend: expected one of \['single', 'accelerate'\], got 'accelerat' \(str\); "
            r"did you mean 'accelerate'\?$",
        ),
        ({"mixed_precision": "fp16"}, r"^TrainConfig.mixed_precision: expected one of \['no', 'bf16'\], got 'fp16'"),
        ({"freeze": "expert-only"}, r"TrainConfig.freeze: expected one of .*got 'expert-only'.*'expert_only'\?$"),
        ({"steps": "10"}, r"^TrainConfig.steps: expected int, got '10' \(str\)$"),
        ({"eval_every": 2.5}, r"^TrainConfig.eval_every: expected int or null, got 2.5 \(float\)$"),
        ({"init": "scratch"}, r"^TrainConfig.init: expected InitConfig, got 'scratch' \(str\)$"),
    ],
)
def test_bad_values_are_refused_when_the_config_is_made(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kw)
    with pytest.raises(ValueError, match=match):
        get_train_config("tiny_cpu", **kw)


def test_nested_values_are_checked_too() -> None:
    with pytest.raises(ValueError, match=r"^InitConfig.kind: expected one of .*got 'lerobt'.*'lerobot'\?$"):
        InitConfig(kind="lerobt", path="/x")
    with pytest.raises(ValueError, match=r"^DatasetSpec.weight: expected float, got '2' \(str\)$"):
        DatasetSpec("/a", "2")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"backend": "accelerat"}, r"^t.json: backend: expected one of \['single', 'accelerate'\], got 'accelerat'"),
        ({"optimizer": {"betas": [0.9]}}, r"^t.json: optimizer.betas: expected 2 items, got 1: \[0.9\] \(list\)$"),
        ({"optimizer": {"lr": "1e-4"}}, r"^t.json: optimizer.lr: expected float, got '1e-4' \(str\)$"),
        (
            {"data": {"datasets": [{"weight": 2}]}},
            r"^t.json: missing DatasetSpec keys \['root'\] in 'data.datasets\[0\]'$",
        ),
        ({"data": {"datasets": [{"root": 3}]}}, r"^t.json: data.datasets\[0\].root: expected str, got 3 \(int\)$"),
        ({"init": {"kind": "scratch", "pth": "/x"}}, r"unknown InitConfig keys \['pth'\] in 'init' \(did you mean"),
        ({"keep_last_n": None, "resume": "yes"}, r"^t.json: resume: expected bool, got 'yes' \(str\)$"),
    ],
)
def test_from_dict_errors_name_the_key_path(data: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TrainConfig.from_dict(data, source="t.json")


def test_from_json_names_the_file(tmp_path) -> None:
    path = tmp_path / "train_config.json"
    path.write_text('{"freeze": "vision-frozen"}')
    with pytest.raises(ValueError, match=r"train_config.json: freeze: expected one of .*did you mean 'vision_frozen'"):
        TrainConfig.from_json(path)
    path.write_text("{")
    with pytest.raises(ValueError, match=r"cannot parse JSON .*train_config.json"):
        TrainConfig.from_json(path)
