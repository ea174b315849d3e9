"""Checkpoint pieces without a policy: optimiser/scheduler/RNG round trips, atomic layout, pruning."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from smolvla.train.checkpointing import (
    TrainingProgress,
    flatten_optimizer_state,
    last_checkpoint,
    list_checkpoints,
    load_training_state,
    save_checkpoint,
    unflatten_optimizer_state,
)
from smolvla.train.config import ScheduleConfig
from smolvla.train.schedule import make_scheduler


def _toy(seed: int = 0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2, betas=(0.9, 0.95), weight_decay=1e-10)
    sched = make_scheduler(opt, ScheduleConfig(warmup_steps=2, decay_steps=20, decay_lr=1e-4), 1e-2)
    return net, opt, sched


def _step(net, opt, sched) -> None:
    loss = net(torch.randn(5, 3)).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()


def test_optimizer_state_flattens_to_tensors_and_json() -> None:
    net, opt, sched = _toy()
    _step(net, opt, sched)
    tensors, meta = flatten_optimizer_state(opt.state_dict())
    assert set(tensors) == {f"state.{i}.{n}" for i in range(4) for n in ("step", "exp_avg", "exp_avg_sq")}
    json.dumps(meta)
    back = unflatten_optimizer_state(tensors, json.loads(json.dumps(meta)))
    ref = opt.state_dict()
    assert back["param_groups"] == ref["param_groups"]
    for i, d in ref["state"].items():
        for k, v in d.items():
            assert torch.equal(back["state"][i][k], v)


def test_unexpected_optimizer_key_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"unexpected optimizer tensor key 'momentum.0'"):
        unflatten_optimizer_state({"momentum.0": torch.zeros(1)}, {"param_ids": [], "scalars": {}, "param_groups": []})


def _save(tmp_path, net, opt, sched, step: int, keep: int | None = 2):
    def save_policy(d):
        from safetensors.torch import save_file

        d.mkdir()
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(d / "model.safetensors"))

    prog = TrainingProgress(step=step, sampler={"epoch": 1, "offset": step})
    return save_checkpoint(tmp_path / "checkpoints", step, save_policy, opt, sched, prog, "{}", keep)


def test_resume_restores_optimizer_scheduler_rng_and_progress(tmp_path) -> None:
    net, opt, sched = _toy()
    for _ in range(3):
        _step(net, opt, sched)
    random.seed(5)
    np.random.seed(6)
    ckpt = _save(tmp_path, net, opt, sched, step=3)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    for _ in range(2):
        _step(net, opt, sched)
    ref_weights = [p.detach().clone() for p in net.parameters()]

    net2, opt2, sched2 = _toy(seed=99)
    from safetensors.torch import load_file

    net2.load_state_dict(load_file(str(ckpt / "pretrained_model" / "model.safetensors")))
    torch.manual_seed(1234)  # scrambled: the checkpoint must restore it
    prog = load_training_state(ckpt / "training_state", opt2, sched2)
    assert prog == TrainingProgress(step=3, sampler={"epoch": 1, "offset": 3})
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]) and got[2] == expected[2]
    # The RNG draws above mirror the ones the reference made before its next two steps.
    for _ in range(2):
        _step(net2, opt2, sched2)
    for a, b in zip(ref_weights, net2.parameters(), strict=True):
        assert torch.equal(a, b)
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_keep_last_n_and_last_pointer(tmp_path) -> None:
    net, opt, sched = _toy()
    for step in (10, 20, 30):
        _save(tmp_path, net, opt, sched, step=step, keep=2)
    ckdir = tmp_path / "checkpoints"
    assert [p.name for p in list_checkpoints(ckdir)] == ["00000020", "00000030"]
    assert last_checkpoint(ckdir).name == "00000030"
    assert not [p for p in ckdir.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_failed_write_leaves_no_checkpoint(tmp_path) -> None:
    net, opt, sched = _toy()

    def broken(d):
        d.mkdir()
        raise OSError("disk full")

    prog = TrainingProgress(step=1, sampler={"epoch": 0, "offset": 1})
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path / "checkpoints", 1, broken, opt, sched, prog, "{}", None)
    assert list_checkpoints(tmp_path / "checkpoints") == []
    assert list((tmp_path / "checkpoints").iterdir()) == []  # the staging dir went with the error
    with pytest.raises(FileNotFoundError, match=r"cannot resume: no 'last' checkpoint pointer"):
        last_checkpoint(tmp_path / "checkpoints")


def test_incomplete_training_state_is_named(tmp_path) -> None:
    net, opt, sched = _toy()
    ckpt = _save(tmp_path, net, opt, sched, step=1)
    (ckpt / "training_state" / "rng_state.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"incomplete: missing \['rng_state.json'\]"):
        load_training_state(ckpt / "training_state", opt, sched)


def test_layout_docstring_names_directories_as_the_code_does(tmp_path) -> None:
    import smolvla.train.checkpointing as checkpointing

    net, opt, sched = _toy()
    name = _save(tmp_path, net, opt, sched, step=200).name
    assert f"\n    {name}/\n" in checkpointing.__doc__ and f"last -> {name} " in checkpointing.__doc__


# Run in a child process that re-saves step 5 and dies between moving the old copy aside and renaming the
# new one into place: `checkpoints/00000005` is missing and `last` dangles until the next resume.
KILLED_WHILE_REPLACING = """
import os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
import test_checkpointing as t

real_replace = os.replace

def replace(src, dst):
    if Path(dst).name == "00000005":
        os._exit(9)
    real_replace(src, dst)

net, opt, sched = t._toy(seed=1)
os.replace = replace
t._save(Path(sys.argv[1]), net, opt, sched, step=5)
"""


def test_kill_while_replacing_a_checkpoint_is_undone_on_resume(tmp_path) -> None:
    net, opt, sched = _toy()
    ckpt = _save(tmp_path, net, opt, sched, step=5)
    weights = (ckpt / "pretrained_model" / "model.safetensors").read_bytes()
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-c", KILLED_WHILE_REPLACING, str(tmp_path), str(Path(__file__).parent)]
    assert subprocess.run(args, env=env, timeout=300).returncode == 9
    assert not ckpt.exists()
    assert last_checkpoint(tmp_path / "checkpoints") == ckpt.resolve()  # the previous copy is put back
    assert (ckpt / "pretrained_model" / "model.safetensors").read_bytes() == weights
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["00000005", "last"]
