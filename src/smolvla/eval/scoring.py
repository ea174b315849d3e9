"""Scoring of evaluation episodes: success rates and the paper's partial credit, per task and per group.

Pure functions over plain records so they are tested with literal inputs.

Partial credit (SmolVLA paper, real-robot tasks): a task with stages scores the sum of the stage scores it
reached (pick-place: 0.5 grasp + 0.5 place; stacking: 0.5 lift + 0.5 stack; sorting: 0.25 per correct
step). A task without stages scores 1.0 on success, else 0.0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class EpisodeResult:
    """One evaluated episode. steps: env steps taken; seconds: wall time of the episode.

    timing: engine figures of episodes played through the async engine (chunks received, hold steps,
    median round trip in seconds, error counts by code and the last error text, ...); empty for
    in-process agents.
    """

    env_name: str
    seed: int
    success: bool
    steps: int
    seconds: float
    stage_scores: dict[str, float] = field(default_factory=dict)
    video: str | None = None
    timing: dict[str, Any] = field(default_factory=dict)

    @property
    def score(self) -> float:
        """Partial-credit score in [0, 1]."""
        if self.stage_scores:
            total = sum(self.stage_scores.values())
            if not 0.0 <= total <= 1.0 + 1e-9:
                raise ValueError(f"{self.env_name} seed {self.seed}: stage scores sum to {total}, expected [0, 1]")
            return 1.0 if self.success else total
        return 1.0 if self.success else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "score": self.score}


@dataclass(frozen=True)
class Summary:
    """Aggregate over a set of episodes."""

    episodes: int
    success_rate: float
    mean_score: float
    mean_steps: float
    mean_seconds: float


def summarize(results: Iterable[EpisodeResult]) -> Summary:
    rs = list(results)
    if not rs:
        raise ValueError("cannot summarise zero episodes")
    n = len(rs)
    return Summary(
        episodes=n,
        success_rate=sum(r.success for r in rs) / n,
        mean_score=sum(r.score for r in rs) / n,
        mean_steps=sum(r.steps for r in rs) / n,
        mean_seconds=sum(r.seconds for r in rs) / n,
    )


def by_task(results: Iterable[EpisodeResult]) -> dict[str, Summary]:
    """Summary per env name, in first-seen order."""
    groups: dict[str, list[EpisodeResult]] = defaultdict(list)
    for r in results:
        groups[r.env_name].append(r)
    return {name: summarize(rs) for name, rs in groups.items()}


def by_group(results: Iterable[EpisodeResult], group_of: Callable[[str], str]) -> dict[str, float]:
    """Success rate per group as the mean of its tasks' success rates (each task weighs the same, as the
    paper's Meta-World table averages per-task rates within a difficulty level)."""
    per_task = by_task(results)
    groups: dict[str, list[float]] = defaultdict(list)
    for name, s in per_task.items():
        groups[group_of(name)].append(s.success_rate)
    return {g: sum(v) / len(v) for g, v in groups.items()}
