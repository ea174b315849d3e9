"""Task relabelling: vague detection, rule and VLM annotators, what gets rewritten and what stays recoverable."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from data_helpers import write_dataset

from smolvla.data import LeRobotDataset
from smolvla.data.relabel import RuleAnnotator, VLMAnnotator, is_vague, relabel_dataset
from smolvla.data.tables import read_episode_stats

TASKS = ["Hold", "Pick up the red cube and place it in the box.", "Up", "Hold"]


@pytest.fixture
def vague(tmp_path):
    return write_dataset(tmp_path / "vague", lengths=(6, 7, 5, 4), tasks=TASKS)


def test_is_vague():
    assert all(is_vague(t) for t in ["", "  ", "Hold", "up.", "Grab", "pick cube"])
    assert not any(is_vague(t) for t in ["Pick up the cube.", "Stack the blue block on the red one"])


def test_rule_relabel_rewrites_and_keeps_originals(vague, tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"hold": "Hold the cube above the box."}))
    report = relabel_dataset(vague, RuleAnnotator.from_json(rules))
    assert [(c["episode_index"], c["old_task"], c["new_task"]) for c in report.changes] == [
        (0, "Hold", "Hold the cube above the box."),
        (3, "Hold", "Hold the cube above the box."),
    ]
    assert report.unresolved == [{"episode_index": 2, "task": "Up"}]  # no rule: left as is, but reported
    ds = LeRobotDataset(vague)
    assert ds.meta.tasks == ["Hold the cube above the box.", TASKS[1], "Up"]
    assert [ds[i]["task"] for i in (0, 6, 13, 18)] == ["Hold the cube above the box.", TASKS[1], "Up", ds.meta.tasks[0]]
    assert ds.meta.info["total_tasks"] == 3
    original = pq.read_table(vague / "meta" / "tasks_original.parquet").column("task").to_pylist()
    assert original == ["Hold", TASKS[1], "Up"]
    log = json.loads((vague / "meta" / "relabel_log.json").read_text())
    assert log[0]["changes"] == report.changes
    episodes = pq.read_table(vague / "meta/episodes/chunk-000/file-000.parquet").column("tasks").to_pylist()
    assert episodes == [["Hold the cube above the box."], [TASKS[1]], ["Up"], ["Hold the cube above the box."]]
    assert read_episode_stats(vague)[2]["task_index"]["mean"].tolist() == [2.0]
    assert pq.ParquetFile(vague / "data/chunk-000/file-000.parquet").num_row_groups == 4
    # a second run keeps the true original and appends to the log
    relabel_dataset(vague, RuleAnnotator({"up": "Lift the cube up."}))
    assert pq.read_table(vague / "meta" / "tasks_original.parquet").column("task").to_pylist() == original
    assert len(json.loads((vague / "meta" / "relabel_log.json").read_text())) == 2
    assert LeRobotDataset(vague)[13]["task"] == "Lift the cube up."


def test_vlm_annotator_with_fake_backend(vague):
    seen = []

    def backend(frames, prompt):
        seen.append((len(frames), frames[0].shape, frames[0].dtype, prompt))
        return "Stack the blocks.\nsecond line ignored"

    report = relabel_dataset(vague, VLMAnnotator(backend, num_frames=2), dry_run=True)
    assert len(seen) == 3 and seen[0][:3] == (2, (48, 64, 3), np.uint8) and "'Hold'" in seen[0][3]
    assert {c["new_task"] for c in report.changes} == {"Stack the blocks."} and report.tasks_after == 2
    assert LeRobotDataset(vague).meta.tasks == ["Hold", TASKS[1], "Up"]  # dry run wrote nothing
    assert not (vague / "meta" / "relabel_log.json").exists()


def test_errors(tmp_path, vague):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(["not", "a", "table"]))
    with pytest.raises(ValueError, match="expected a JSON object mapping task strings to task strings"):
        RuleAnnotator.from_json(bad)
    with pytest.raises(ValueError, match=r"relabel rules map \['hold'\] to an empty task"):
        RuleAnnotator({"Hold": " "})
    with pytest.raises(FileNotFoundError, match="not a local model directory"):
        VLMAnnotator.from_model_dir(tmp_path / "no_model")


def test_rules_apply_to_clear_tasks_too_and_a_vlm_only_to_vague_ones(vague):
    clear = TASKS[1]
    rules = RuleAnnotator({clear: "Put the red cube in the box.", "Up": "Lift the cube."})
    report = relabel_dataset(vague, rules, dry_run=True)
    assert [(c["episode_index"], c["new_task"]) for c in report.changes] == [
        (1, "Put the red cube in the box."),
        (2, "Lift the cube."),
    ]
    assert report.unresolved == [{"episode_index": 0, "task": "Hold"}, {"episode_index": 3, "task": "Hold"}]
    assert relabel_dataset(vague, rules, only_vague=True, dry_run=True).changes[0]["episode_index"] == 2
    asked = []
    vlm = VLMAnnotator(lambda frames, prompt: asked.append(prompt) or "Do the thing.")
    relabel_dataset(vague, vlm, dry_run=True)
    assert len(asked) == 3 and not any(f"recorded as {clear!r}" in p for p in asked)  # episodes 0, 2, 3
    relabel_dataset(vague, vlm, only_vague=False, dry_run=True)
    assert len(asked) == 7


def test_relabel_takes_the_writer_lock(vague, tmp_path):
    """A relabel rewrites files a running writer appends to: it must wait its turn, and a dry run need not."""
    from smolvla.data.lock import DatasetLock, DatasetLockedError

    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"hold": "Hold the cube above the box."}))
    with DatasetLock(vague):
        assert relabel_dataset(vague, RuleAnnotator.from_json(rules), dry_run=True).changes  # reads only
        with pytest.raises(DatasetLockedError, match="only one writer"):
            relabel_dataset(vague, RuleAnnotator.from_json(rules))
    assert LeRobotDataset(vague).meta.tasks == TASKS[:3]  # nothing written while locked
    assert relabel_dataset(vague, RuleAnnotator.from_json(rules)).changes  # and the lock is free afterwards
