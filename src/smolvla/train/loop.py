"""The training loop: `main(cfg)` = init_train_state, then train_step / evaluate / save_checkpoint.

Determinism: given a seed, the run is a pure function of (config, data). Batches come from the
resumable sampler, noise and flow times from the global torch RNG, whose state every checkpoint saves;
a resumed run therefore reproduces an uninterrupted one bit for bit on CPU (tested).
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from smolvla.policy.policy import SmolVLAPolicy
from smolvla.train.aux_state import AUX_HEAD_FILE, EnvStateHead, env_state_stats
from smolvla.train.checkpointing import (
    PRETRAINED_DIR,
    STATE_DIR,
    TrainingProgress,
    last_checkpoint,
    list_checkpoints,
    load_training_state,
)
from smolvla.train.checkpointing import save_checkpoint as write_checkpoint
from smolvla.train.config import TrainConfig, check_pretrained_start
from smolvla.train.data import check_task_budget, load_metas, make_dataloader, open_datasets
from smolvla.train.freeze import apply_freeze
from smolvla.train.initialize import build_policy, resume_policy
from smolvla.train.metrics import METRICS_FILE, MetricsWriter, plot_loss_curve
from smolvla.train.runtime import Runtime, make_runtime
from smolvla.train.sampler import ResumableBatchSampler, SamplerState
from smolvla.train.schedule import make_scheduler

logger = logging.getLogger(__name__)

# The simulation/eval code passes this in: (policy, step) -> {"success_rate": ..., ...}.
EvalFn = Callable[[SmolVLAPolicy, int], dict[str, float]]


class PolicyLoss(nn.Module):
    """`forward(batch) -> (loss, per_element)`: routes the loss through `__call__` so DDP can sync grads.

    With an `aux` head the loss is flow matching + `aux_weight` x the head's loss; per_element stays the flow
    matching part, and `last_aux` keeps the head's loss of the last call (detached) for the logs.
    """

    def __init__(self, policy: SmolVLAPolicy, aux: EnvStateHead | None = None, aux_weight: float = 0.0) -> None:
        super().__init__()
        self.policy = policy
        self.aux, self.aux_weight = aux, aux_weight
        self.last_aux: torch.Tensor | None = None

    def forward(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        loss, per = self.policy.compute_loss(batch)
        if self.aux is None:
            return loss, per
        aux = self.aux.loss(batch)
        self.last_aux = aux.detach()
        return loss + self.aux_weight * aux, per


@dataclass
class TrainState:
    """Everything that changes during a run (plus the objects that produce batches)."""

    policy: SmolVLAPolicy
    module: nn.Module  # PolicyLoss, wrapped by DDP under accelerate
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    loader: DataLoader
    sampler: ResumableBatchSampler
    params: list[nn.Parameter]
    runtime: Runtime
    step: int = 0
    run_dir: Path = field(default_factory=Path)
    aux: EnvStateHead | None = None


@dataclass(frozen=True)
class TrainResult:
    step: int
    last_loss: float
    samples_per_s: float
    metrics_path: Path
    checkpoint: Path | None


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def init_train_state(cfg: TrainConfig, runtime: Runtime) -> TrainState:
    """Check data against the policy, build (or resume) policy, optimiser, scheduler and data stream."""
    run_dir = Path(cfg.output_dir)
    ckpt_dir = run_dir / "checkpoints"
    schedule = cfg.schedule.resolve(cfg.steps)
    metas = load_metas(cfg.data)  # metadata only: every check below runs before weights are built
    seed_everything(cfg.seed)
    if cfg.resume:
        ckpt = last_checkpoint(ckpt_dir)
        saved = TrainConfig.from_json(ckpt / "train_config.json")
        if saved.freeze != cfg.freeze:
            # The optimiser state holds exactly the parameters that trained; another set cannot resume it.
            raise ValueError(f"cannot resume {ckpt} (freeze={saved.freeze!r}) with freeze={cfg.freeze!r}")
        check_resume_schedule(saved, cfg, ckpt)
        policy = resume_policy(ckpt / PRETRAINED_DIR, metas, cfg.init.max_task_tokens, cfg.data.mixture)
    else:
        if list_checkpoints(ckpt_dir):
            raise ValueError(
                f"{ckpt_dir} already holds checkpoints {[p.name for p in list_checkpoints(ckpt_dir)]}; "
                "pass resume=True (CLI: --resume) to continue that run, or choose another output_dir"
            )
        policy = build_policy(cfg.init, metas, cfg.seed, cfg.data.mixture)
    if policy.tokenizer is not None:
        check_task_budget(metas, policy.tokenizer, mixture=cfg.data.mixture)
    datasets = open_datasets(metas, policy.config, cfg.data)
    apply_freeze(policy.model, cfg.freeze, policy.config.model.decoder.layers)
    params = [p for p in policy.model.parameters() if p.requires_grad]
    aux = None
    if cfg.aux_env_state > 0:
        aux = EnvStateHead(policy.model, len(policy.config.camera_keys), *env_state_stats(metas), seed=cfg.seed)
        aux.to(policy.device)
        if cfg.resume:
            aux.load(ckpt / STATE_DIR / AUX_HEAD_FILE)
        params += list(aux.parameters())  # after the policy's: the optimiser state indexes them in this order
    o = cfg.optimizer
    optimizer = torch.optim.AdamW(params, lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay)
    module, optimizer = runtime.prepare(PolicyLoss(policy, aux, cfg.aux_env_state), optimizer)
    scheduler = make_scheduler(optimizer, schedule, o.lr)
    logger.info(
        "lr schedule: warmup %d steps, cosine decay to %g at step %d",
        schedule.warmup_steps, schedule.decay_lr, schedule.decay_steps,
    )  # fmt: skip
    step, sampler_state = 0, SamplerState()
    if cfg.resume:
        progress = load_training_state(ckpt / STATE_DIR, optimizer, scheduler)  # also restores RNG states
        step, sampler_state = progress.step, SamplerState.from_dict(progress.sampler)
        logger.info("resumed from %s at step %d", ckpt, step)
    if runtime.world_size > 1:
        # Same initial weights everywhere, different noise per rank. The checkpoint holds rank 0's RNG
        # only, so a multi-process resume is deterministic but not bit-identical to an uninterrupted run.
        base = cfg.seed if not cfg.resume else int(torch.randint(2**31, ()).item())
        torch.manual_seed(base + runtime.rank)
    loader, sampler = make_dataloader(
        datasets, metas, policy.config, cfg.data, cfg.batch_size, cfg.seed,
        rank=runtime.rank, world_size=runtime.world_size, state=sampler_state, tokenizer=policy.tokenizer,
    )  # fmt: skip
    return TrainState(policy, module, optimizer, scheduler, loader, sampler, params, runtime, step, run_dir, aux)


def check_resume_schedule(saved: TrainConfig, cfg: TrainConfig, ckpt: Path) -> None:
    """The learning rate and its schedule come back from the checkpoint's optimiser/scheduler state, so a
    resumed run cannot change them; different values given now would be silently ignored: refuse them."""
    # Schedules are compared as resolved: one that follows the run's length changes with --steps.
    was = saved.schedule.resolve(saved.steps)
    groups = {
        "optimizer": (asdict(saved.optimizer), asdict(cfg.optimizer)),
        "schedule": (asdict(was), asdict(cfg.schedule.resolve(cfg.steps))),
    }
    diffs = [
        f"{group}.{k}: saved {old[k]!r}, given {new[k]!r}"
        for group, (old, new) in groups.items()
        for k in new
        if k != "warmup_fraction" and old[k] != new[k]
    ]
    if diffs:
        raise ValueError(
            f"cannot resume {ckpt} with another optimiser or learning-rate schedule ({'; '.join(diffs)}); "
            f"pass the run's original values (CLI: --lr {saved.optimizer.lr:g} --warmup-steps {was.warmup_steps} "
            f"--decay-steps {was.decay_steps} --decay-lr {was.decay_lr:g}) or start a new run"
        )


def train_step(state: TrainState, batch: dict, cfg: TrainConfig) -> dict[str, torch.Tensor | float]:
    """One optimiser update on `batch`; returns the step's loss, grad norm (tensors) and lr."""
    state.module.train()
    with state.runtime.autocast():
        loss, _ = state.module(batch)
    state.runtime.backward(loss)
    grad_norm = state.runtime.clip_grad_norm(state.params, cfg.optimizer.grad_clip_norm)
    lr = state.optimizer.param_groups[0]["lr"]
    state.optimizer.step()
    state.optimizer.zero_grad(set_to_none=True)
    state.scheduler.step()
    state.sampler.advance()
    state.step += 1
    out = {"loss": loss.detach(), "grad_norm": grad_norm.detach(), "lr": lr}
    if state.aux is not None:
        out["aux_loss"] = _unwrap(state.module).last_aux
    return out


def _unwrap(module: nn.Module) -> PolicyLoss:
    """The PolicyLoss inside a DDP (accelerate) wrapper, or the module itself."""
    return module.module if hasattr(module, "module") else module  # type: ignore[return-value]


def evaluate(state: TrainState, eval_fn: EvalFn) -> dict[str, float]:
    """Run the caller's evaluation on the main process without disturbing the training RNG stream."""
    out: dict[str, float] = {}
    if state.runtime.is_main:
        np_state, py_state = np.random.get_state(), random.getstate()
        devices = [state.runtime.device] if state.runtime.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            state.policy.eval()
            out = {f"eval/{k}": float(v) for k, v in eval_fn(state.policy, state.step).items()}
            state.policy.reset()
        np.random.set_state(np_state)
        random.setstate(py_state)
        state.module.train()
    state.runtime.barrier()
    return out


def save_checkpoint(state: TrainState, cfg: TrainConfig) -> Path | None:
    """Write `<output_dir>/checkpoints/<step>` (main process only); returns its path there."""
    path = None
    if state.runtime.is_main:
        progress = TrainingProgress(step=state.step, sampler=state.sampler.state.to_dict())
        aux = state.aux
        path = write_checkpoint(
            state.run_dir / "checkpoints", state.step, state.policy.save_pretrained, state.optimizer,
            state.scheduler, progress, _config_json(cfg), cfg.keep_last_n,
            None if aux is None else (lambda d: aux.save(d / AUX_HEAD_FILE)),
        )  # fmt: skip
    state.runtime.barrier()
    return path


def _config_json(cfg: TrainConfig) -> str:
    import json

    return json.dumps(cfg.to_dict(), indent=2) + "\n"


class _Window:
    """Accumulates loss over a logging window without a device sync per step."""

    def __init__(self) -> None:
        self.loss_sum: torch.Tensor | float = 0.0
        self.aux_sum: torch.Tensor | float | None = None
        self.steps = 0
        self.t0 = time.monotonic()

    def exclude(self, since: float) -> None:
        """Leave time spent since `since` (checkpointing, evaluation) out of the throughput."""
        self.t0 += time.monotonic() - since

    def add(self, loss: torch.Tensor, aux: torch.Tensor | None = None) -> None:
        self.loss_sum = self.loss_sum + loss
        if aux is not None:
            self.aux_sum = (0.0 if self.aux_sum is None else self.aux_sum) + aux
        self.steps += 1

    def record(self, step: int, m: dict, batch_size: int) -> dict:
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        rec = {
            "step": step,
            "loss": float(self.loss_sum) / self.steps,
            "grad_norm": float(m["grad_norm"]),
            "lr": float(m["lr"]),
            "samples_per_s": self.steps * batch_size / elapsed,
        }
        if self.aux_sum is not None:
            rec["aux_loss"] = float(self.aux_sum) / self.steps  # unweighted; "loss" includes its weighted share
        self.__init__()
        return rec


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Use `n` torch intra-op threads inside the block (None: leave as is), then restore the old count."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def main(cfg: TrainConfig, eval_fn: EvalFn | None = None) -> TrainResult:
    """Train as configured; returns the final step, last logged loss and throughput."""
    # Here rather than in init_train_state: benchmarks time a frozen random model on purpose.
    check_pretrained_start(cfg)
    with cpu_threads(cfg.num_threads):
        return _run(cfg, eval_fn)


def _run(cfg: TrainConfig, eval_fn: EvalFn | None) -> TrainResult:
    runtime = make_runtime(cfg)
    state = init_train_state(cfg, runtime)
    writer = MetricsWriter(state.run_dir, tensorboard=cfg.tensorboard) if runtime.is_main else None
    window, record, ckpt = _Window(), {"loss": float("nan"), "samples_per_s": float("nan")}, None
    batches = iter(state.loader)
    with tqdm(total=cfg.steps, initial=state.step, disable=not runtime.is_main, desc="train") as bar:
        while state.step < cfg.steps:
            m = train_step(state, next(batches), cfg)
            window.add(m["loss"], m.get("aux_loss"))
            bar.update(1)
            if state.step % cfg.log_every == 0 or state.step == cfg.steps:
                record = window.record(state.step, m, cfg.batch_size)
                bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}")
                if writer:
                    writer.log(record)
            t_side = time.monotonic()
            if eval_fn is not None and cfg.eval_every and state.step % cfg.eval_every == 0:
                scores = evaluate(state, eval_fn)
                if writer:
                    writer.log({"step": state.step, **scores})
            if state.step % cfg.save_every == 0 or state.step == cfg.steps:
                ckpt = save_checkpoint(state, cfg)
            window.exclude(t_side)
    if writer:
        writer.close()
        if cfg.plot_loss:
            plot_loss_curve(writer.path, state.run_dir / "loss_curve.png")
    metrics_path = state.run_dir / METRICS_FILE
    return TrainResult(state.step, record["loss"], record["samples_per_s"], metrics_path, ckpt)
