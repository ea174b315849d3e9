"""LIBERO suite tables (no simulator import): the four suites SmolVLA reports and their episode budgets."""

from __future__ import annotations

LIBERO_SUITES: tuple[str, ...] = ("libero_spatial", "libero_object", "libero_goal", "libero_10")
LIBERO_TASKS_PER_SUITE = 10
# Step budgets per episode used by the LIBERO evaluations SmolVLA and pi0 report (about 1.5x the longest
# human demonstration in each suite).
MAX_EPISODE_STEPS: dict[str, int] = {
    "libero_spatial": 220,
    "libero_object": 280,
    "libero_goal": 300,
    "libero_10": 520,
}
