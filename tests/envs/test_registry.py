"""Env names, task sets and the Meta-World difficulty table (no simulator needed)."""

from __future__ import annotations

import pytest

from smolvla.envs import list_envs, make_env, resolve_tasks
from smolvla.envs.metaworld_tasks import DIFFICULTY, INSTRUCTIONS, MT10, MT50, difficulty_of
from smolvla.envs.registry import BENCHMARKS, DEFAULT_TASKS, require_simulator


def test_names() -> None:
    names = list_envs()
    assert len(list_envs("metaworld")) == 50 and "metaworld/reach-v3" in names
    assert list_envs("so101") == ["so101/pick-place", "so101/stacking", "so101/sorting"]
    assert len(list_envs("libero")) == 40 and "libero/libero_10/9" in names
    assert len(set(names)) == len(names)


def test_difficulty_partitions_mt50() -> None:
    sizes = {g: len(t) for g, t in DIFFICULTY.items()}
    assert sizes == {"easy": 28, "medium": 11, "hard": 6, "very_hard": 5}
    grouped = [t for tasks in DIFFICULTY.values() for t in tasks]
    assert sorted(grouped) == sorted(MT50) and len(set(grouped)) == 50
    assert difficulty_of("pick-place-v3") == "hard" and difficulty_of("reach-v3") == "easy"
    with pytest.raises(ValueError, match="unknown Meta-World task 'reach'"):
        difficulty_of("reach")


def test_instructions_are_distinct_sentences() -> None:
    assert set(MT10) <= set(INSTRUCTIONS)
    texts = list(INSTRUCTIONS.values())
    assert len(set(texts)) == len(texts) and all(t and t == t.strip() for t in texts)


def test_resolve_tasks() -> None:
    assert resolve_tasks("metaworld", "mt10") == [f"metaworld/{t}" for t in MT10]
    assert len(resolve_tasks("metaworld", "MT50")) == 50
    assert len(resolve_tasks("metaworld", "very_hard")) == 5
    assert resolve_tasks("metaworld", "reach-v3, metaworld/push-v3") == ["metaworld/reach-v3", "metaworld/push-v3"]
    assert resolve_tasks("libero", "libero_goal")[0] == "libero/libero_goal/0"
    both = resolve_tasks("libero", "libero_spatial, libero_object,libero_object/3")  # sets, then a name once
    assert len(both) == 20 and both[0] == "libero/libero_spatial/0" and both[-1] == "libero/libero_object/9"
    with pytest.raises(ValueError, match="unknown metaworld task 'reach-v2'; did you mean 'reach-v3'"):
        resolve_tasks("metaworld", "reach-v2")
    with pytest.raises(ValueError, match="unknown benchmark 'metaword'; did you mean 'metaworld'"):
        resolve_tasks("metaword", "mt10")
    with pytest.raises(ValueError, match="empty task spec"):
        resolve_tasks("metaworld", " , ")


def test_unknown_env_name_suggests() -> None:
    with pytest.raises(ValueError, match="unknown environment 'metaworld/reach-v2'; did you mean 'metaworld/reach-v3'"):
        make_env("metaworld/reach-v2")
    with pytest.raises(ValueError, match="unknown environment 'nothing-like-it'; see list_envs"):
        make_env("nothing-like-it")


def test_missing_simulator_names_the_install(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "metaworld", None)  # makes `import metaworld` fail
    with pytest.raises(ImportError, match=r"metaworld envs need an optional package: pip install 'smolvla\[sim\]'"):
        make_env("metaworld/reach-v3")


@pytest.mark.parametrize("benchmark", BENCHMARKS)
def test_every_benchmark_has_a_default_task_set(benchmark) -> None:
    names = resolve_tasks(benchmark, DEFAULT_TASKS[benchmark])
    assert names and set(names) <= set(list_envs(benchmark))


@pytest.mark.parametrize(
    ("benchmark", "module", "extra"),
    [("so101", "lerobot_env_so101", "sim"), ("libero", "libero", "libero")],
)
def test_missing_simulator_names_our_extra(monkeypatch, benchmark, module, extra) -> None:
    import sys

    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(
        ModuleNotFoundError, match=rf"{benchmark} envs need an optional package: pip install 'smolvla\[{extra}\]'"
    ):
        require_simulator(benchmark)
