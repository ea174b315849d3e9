"""Task strings against the policy's token budget: scratch runs learn a subword vocabulary from the tasks,
and every task is checked before the first step."""

from __future__ import annotations

import json

import pytest
import torch

from smolvla.envs.metaworld_tasks import INSTRUCTIONS
from smolvla.policy.checkpoint import load_policy
from smolvla.train.config import DataConfig, DatasetSpec, InitConfig, get_train_config
from smolvla.train.loop import main

from .train_helpers import write_tiny_dataset

# The longest Meta-World instructions: 51-63 bytes, over every byte-level budget of the small presets.
LONG_TASKS = tuple(sorted(INSTRUCTIONS.values(), key=len)[-3:])


@pytest.fixture(scope="module")
def meta_world_tasks_dataset(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("mw") / "ds", episodes=3, tasks=LONG_TASKS)


def _cfg(dataset, out, **init):
    return get_train_config(
        "tiny_cpu",
        steps=1,
        batch_size=2,
        plot_loss=False,
        output_dir=str(out),
        data=DataConfig(datasets=(DatasetSpec(str(dataset)),)),
        init=InitConfig(model_preset="tiny", **init),
    )


def test_tiny_preset_trains_on_meta_world_instructions(meta_world_tasks_dataset, tmp_path) -> None:
    """The README's `smolvla train --preset tiny_cpu` on Meta-World data used to fail: one token per byte
    and a 16-token budget. The preset's BPE, learned from the tasks, travels in the checkpoint."""
    assert min(len(t) for t in LONG_TASKS) > 48
    data = DataConfig(datasets=(DatasetSpec(str(meta_world_tasks_dataset)),))
    result = main(
        get_train_config("tiny_cpu", steps=1, batch_size=2, plot_loss=False, output_dir=str(tmp_path), data=data)
    )
    policy = load_policy(result.checkpoint / "pretrained_model")
    assert policy.config.max_lang_tokens == 48 and policy.tokenizer.max_length == 48
    saved = json.loads((result.checkpoint / "pretrained_model" / "tokenizer.json").read_text())
    assert saved["model"]["type"] == "BPE" and len(saved["model"]["merges"]) > 0
    # Each word (and the comma, and the newline) is one learned token.
    assert policy.tokenizer.lengths(list(LONG_TASKS)) == [len(t.replace(",", " ,").split()) + 1 for t in LONG_TASKS]
    chunk = policy.predict_action_chunk(
        {
            "observation.images.top": torch.rand(1, 3, 32, 32),
            "observation.images.wrist": torch.rand(1, 3, 32, 32),
            "observation.state": torch.zeros(1, 6),
            "task": [LONG_TASKS[0]],
        }
    )
    assert chunk.shape == (1, 10, 6) and bool(torch.isfinite(chunk).all())


def test_tasks_over_the_budget_fail_before_training(meta_world_tasks_dataset, tmp_path) -> None:
    """The old scratch tokenizer (bytes) with the tiny model's budget: one error before any step, listing
    every task too long with its token count and the flag that raises the budget."""
    cfg = _cfg(meta_world_tasks_dataset, tmp_path / "run", tokenizer="byte")
    with pytest.raises(ValueError, match=r"3 dataset task\(s\) exceed the policy's budget of 16 tokens") as err:
        main(cfg)
    msg = str(err.value)
    for task in LONG_TASKS:
        assert f"{task!r} ({len(task) + 1} tokens" in msg
    assert f"--max-task-tokens {max(len(t) for t in LONG_TASKS) + 1}" in msg
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
    # The flag's value is enough: the same run with the budget it names trains.
    budget = max(len(t) for t in LONG_TASKS) + 1
    result = main(_cfg(meta_world_tasks_dataset, tmp_path / "ok", tokenizer="byte", max_task_tokens=budget))
    assert result.step == 1 and load_policy(result.checkpoint / "pretrained_model").config.max_lang_tokens == budget


def test_finetuning_can_raise_the_budget(meta_world_tasks_dataset, tmp_path) -> None:
    """The budget shapes no weight: a checkpoint trained with one budget fine-tunes with a larger one and
    predicts the same actions for a task that fit before."""
    first = main(_cfg(meta_world_tasks_dataset, tmp_path / "a", max_task_tokens=20)).checkpoint / "pretrained_model"
    init = InitConfig(kind="checkpoint", path=str(first), max_task_tokens=40)
    from smolvla.data.meta import load_meta
    from smolvla.train.initialize import build_policy

    grown = build_policy(init, [load_meta(meta_world_tasks_dataset)], seed=0)
    assert grown.config.max_lang_tokens == 40 and grown.model.config.max_lang_tokens == 40
    before = load_policy(first)
    batch = {
        "observation.images.top": torch.rand(1, 3, 32, 32),
        "observation.images.wrist": torch.rand(1, 3, 32, 32),
        "observation.state": torch.zeros(1, 6),
        "task": [LONG_TASKS[1]],
    }
    noise = torch.randn(1, 10, 32)
    torch.testing.assert_close(grown.predict_action_chunk(batch, noise), before.predict_action_chunk(batch, noise))
