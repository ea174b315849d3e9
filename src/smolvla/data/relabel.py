"""Replace vague task strings ("Hold", "Up", "") of a v3.0 dataset with real instructions.

An annotator is any callable `(task: str, episode: EpisodeView) -> str | None` (None = no suggestion):
* `RuleAnnotator`: a JSON table {"old task": "new task"} (matched case-insensitively, whitespace-trimmed). A
  rule names the exact task it rewrites, so rules apply to every task they match, vague or not;
* `VLMAnnotator`: asks a vision-language backend - a callable `(frames: list[uint8[H, W, 3]], prompt) -> str` -
  about a few frames of the episode; `VLMAnnotator.from_model_dir(dir)` builds such a backend from a local
  transformers model directory (never downloads). It is asked about vague tasks only unless told otherwise
  (`only_vague=False`, the CLI's `--all`): describing clear instructions costs time and can only blur them.

`relabel_dataset` works per episode (one vague "Hold" may mean different things in different episodes),
rebuilds tasks.parquet (tasks in order of first use), rewrites every frame's task_index, the episodes'
`tasks` column and the task_index stats, all in one atomic transaction (commit.py). What it replaced stays
recoverable: the first relabel saves the original table as meta/tasks_original.parquet, and every run
appends its changes (episode, old, new, annotator) to meta/relabel_log.json.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from smolvla.data.commit import Transaction
from smolvla.data.lock import DatasetLock
from smolvla.data.meta import DatasetMeta, load_meta, read_parquet
from smolvla.data.stats import aggregate_stats, stats_to_json, vector_stats
from smolvla.data.tables import read_episode_stats, write_tasks
from smolvla.data.video import close_readers, decode_frames

VAGUE_WORDS = {"", "hold", "up", "down", "left", "right", "go", "move", "grab", "test", "task", "default", "none"}


def is_vague(task: str, min_words: int = 3) -> bool:
    """True for empty/placeholder tasks: a known vague word, or fewer than `min_words` words."""
    text = task.strip().lower().rstrip(".!")
    return text in VAGUE_WORDS or len(re.findall(r"\w+", text)) < min_words


@dataclass
class EpisodeView:
    """What an annotator may look at: the episode index and a way to fetch its camera frames."""

    meta: DatasetMeta
    episode_index: int

    def frames(self, num: int = 3, camera: str | None = None) -> list[np.ndarray]:
        """`num` evenly spaced uint8[H, W, 3] frames of the episode (first camera unless named); video and
        PNG-in-parquet image cameras alike. A dataset without cameras gives []."""
        keys = self.meta.camera_keys
        if not keys:
            return []
        key = camera or keys[0]
        if key not in keys:
            raise ValueError(f"camera {key!r} is not in dataset {self.meta.root}; it has {keys}")
        eps, ep = self.meta.episodes, self.episode_index
        length = int(eps["length"][ep])
        picks = np.linspace(0, length - 1, num).round().astype(int)
        if key in self.meta.image_keys:
            from smolvla.data.dataset import LeRobotDataset  # imports torch: only image cameras need it

            ds = LeRobotDataset(self.meta.root, episodes=[ep], return_uint8=True)
            return [ds[int(i)][key].numpy().transpose(1, 2, 0) for i in picks]
        offset = float(eps[f"videos/{key}/from_timestamp"][ep])
        times = [offset + i / self.meta.fps for i in picks]
        out = decode_frames(self.meta.root / str(eps[f"videos/{key}/path"][ep]), times, episode=ep)
        return [f.transpose(1, 2, 0) for f in out]


Annotator = Callable[[str, EpisodeView], "str | None"]


class RuleAnnotator:
    """Table lookup: {"hold": "Hold the red block above the bowl."}; keys compared trimmed, lower case.
    Applies to every task a key matches, vague or not (the user wrote the rule for that task)."""

    only_vague = False  # the default of `relabel_dataset(only_vague=None)` for this annotator

    def __init__(self, table: dict[str, str]):
        self.table = {k.strip().lower(): v for k, v in table.items()}
        empty = [k for k, v in self.table.items() if not v.strip()]
        if empty:
            raise ValueError(f"relabel rules map {empty} to an empty task")

    @classmethod
    def from_json(cls, path: str | Path) -> RuleAnnotator:
        table = json.loads(Path(path).read_text())
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise ValueError(f"{path}: expected a JSON object mapping task strings to task strings")
        return cls(table)

    def __call__(self, task: str, episode: EpisodeView) -> str | None:
        return self.table.get(task.strip().lower())


PROMPT = (
    "These frames show a robot episode whose instruction was recorded as {task!r}. Write the instruction the "
    "robot is carrying out as one short imperative sentence (e.g. 'Pick up the red cube and place it in the box.')."
)


class VLMAnnotator:
    """Describe the episode with a VLM backend `(frames, prompt) -> text`; returns its first line."""

    only_vague = True  # the default of `relabel_dataset(only_vague=None)`: clear tasks are not re-described

    def __init__(self, backend: Callable[[list[np.ndarray], str], str], num_frames: int = 3, prompt: str = PROMPT):
        self.backend, self.num_frames, self.prompt = backend, num_frames, prompt

    def __call__(self, task: str, episode: EpisodeView) -> str | None:
        text = self.backend(episode.frames(self.num_frames), self.prompt.format(task=task)).strip()
        return text.splitlines()[0].strip() if text else None

    @classmethod
    def from_model_dir(cls, model_dir: str | Path, max_new_tokens: int = 40, **kw) -> VLMAnnotator:
        """Backend from a local transformers image-text-to-text model dir (offline, local files only)."""
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise FileNotFoundError(f"{model_dir}: not a local model directory (no config.json)")
        from transformers import AutoModelForImageTextToText, AutoProcessor

        processor = AutoProcessor.from_pretrained(model_dir, local_files_only=True)
        model = AutoModelForImageTextToText.from_pretrained(model_dir, local_files_only=True).eval()

        def backend(frames: list[np.ndarray], prompt: str) -> str:
            content = [{"type": "image"} for _ in frames] + [{"type": "text", "text": prompt}]
            text = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
            inputs = processor(text=text, images=frames or None, return_tensors="pt")
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
            return processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)[0]

        return cls(backend, **kw)


@dataclass
class RelabelReport:
    changes: list[dict] = field(default_factory=list)  # {episode_index, old_task, new_task, annotator}
    unresolved: list[dict] = field(default_factory=list)  # vague tasks the annotator had no answer for
    tasks_before: int = 0
    tasks_after: int = 0


def _plan(meta: DatasetMeta, annotator: Annotator, only_vague: bool, frame_tasks: dict[int, np.ndarray]):
    """Per (episode, old task index) the new task string; also fills the report."""
    report = RelabelReport(tasks_before=len(meta.tasks))
    new_of: dict[tuple[int, int], str] = {}
    name = type(annotator).__name__
    for ep, tidx in frame_tasks.items():
        for t in dict.fromkeys(tidx.tolist()):
            old = meta.tasks[t]
            new = old
            if not only_vague or is_vague(old):
                suggestion = annotator(old, EpisodeView(meta, ep))
                if suggestion and suggestion.strip() and suggestion.strip() != old:
                    new = suggestion.strip()
                    report.changes.append({"episode_index": ep, "old_task": old, "new_task": new, "annotator": name})
                elif is_vague(old):
                    report.unresolved.append({"episode_index": ep, "task": old})
            new_of[(ep, t)] = new
    return new_of, report


def relabel_dataset(
    root: str | Path, annotator: Annotator, only_vague: bool | None = None, dry_run: bool = False
) -> RelabelReport:
    """Relabel the tasks of the v3.0 dataset at `root`; returns what changed (nothing is written if dry_run).

    only_vague: offer the annotator only vague tasks (`is_vague`). None: the annotator's own `only_vague`
    (False for rules, True for a VLM; True for a plain callable)."""
    if only_vague is None:
        only_vague = getattr(annotator, "only_vague", True)
    root = Path(root)
    if dry_run:
        return _relabel(root, annotator, only_vague, dry_run=True)
    # Held from the first read to the commit: a writer appending meanwhile would be overwritten.
    with DatasetLock(root):
        return _relabel(root, annotator, only_vague, dry_run=False)


def _relabel(root: Path, annotator: Annotator, only_vague: bool, dry_run: bool) -> RelabelReport:
    meta = load_meta(root)
    if meta.version != "v3.0":
        raise ValueError(f"{root}: relabelling needs a v3.0 dataset, got {meta.version}; convert it first")
    data_files = sorted(set(meta.episodes["data_path"].tolist()))
    tables = {rel: read_parquet(root / rel) for rel in data_files}
    frame_tasks: dict[int, np.ndarray] = {}
    for table in tables.values():
        ep_col, t_col = table.column("episode_index").to_numpy(), table.column("task_index").to_numpy()
        for ep in np.unique(ep_col):
            frame_tasks[int(ep)] = t_col[ep_col == ep]
    new_of, report = _plan(meta, annotator, only_vague, frame_tasks)
    tasks = list(dict.fromkeys(new_of[k] for k in sorted(new_of)))
    report.tasks_after = len(tasks)
    if dry_run or not report.changes:
        return report
    index_of = {t: i for i, t in enumerate(tasks)}
    txn = Transaction(root, "relabel")
    try:
        for rel, table in tables.items():
            ep_col, t_col = table.column("episode_index").to_numpy(), table.column("task_index").to_numpy()
            new_col = np.array([index_of[new_of[(int(e), int(t))]] for e, t in zip(ep_col, t_col, strict=True)])
            pos = table.column_names.index("task_index")
            table = table.set_column(pos, "task_index", pa.array(new_col, type=pa.int64()))
            with pq.ParquetWriter(txn.path(rel), table.schema, compression="snappy") as writer:
                starts = np.flatnonzero(np.r_[True, ep_col[1:] != ep_col[:-1]])
                for a, b in zip(starts, np.r_[starts[1:], len(ep_col)], strict=True):
                    writer.write_table(table.slice(int(a), int(b - a)))  # one row group per episode, as LeRobot
            for ep in np.unique(ep_col):
                frame_tasks[int(ep)] = new_col[ep_col == ep]
        _stage_meta(root, meta, txn, tasks, frame_tasks, report)
    except BaseException:
        txn.abort()
        raise
    close_readers()
    txn.commit()
    return report


def _stage_meta(root: Path, meta: DatasetMeta, txn: Transaction, tasks, frame_tasks, report) -> None:
    """Stage tasks, episodes (tasks column + task_index stats), stats.json, info.json and the recovery files."""
    ep_stats = read_episode_stats(root)
    for path in sorted((root / "meta" / "episodes").glob("*/*.parquet")):
        rows = pq.read_table(path).to_pylist()
        for row in rows:
            ep = row["episode_index"]
            tidx = frame_tasks[ep]
            row["tasks"] = [tasks[t] for t in dict.fromkeys(tidx.tolist())]
            if "stats/task_index/mean" in row:
                new = vector_stats(tidx.astype(np.int64))
                for k, v in new.items():
                    row[f"stats/task_index/{k}"] = v.astype(np.int64 if k == "count" else np.float64).tolist()
                ep_stats[ep]["task_index"] = new
        pq.write_table(pa.Table.from_pylist(rows), txn.path(path.relative_to(root)))
    if (root / "meta" / "stats.json").is_file() and all("task_index" in s for s in ep_stats):
        stats = json.loads((root / "meta" / "stats.json").read_text())
        running = ep_stats[0]["task_index"]
        for s in ep_stats[1:]:  # incremental, like the writer
            running = aggregate_stats([{"t": running}, {"t": s["task_index"]}])["t"]
        stats["task_index"] = stats_to_json({"task_index": running})["task_index"]
        txn.path("meta/stats.json").write_text(json.dumps(stats, indent=4))
    write_tasks(txn.path("meta/tasks.parquet"), tasks)
    info = dict(meta.info, total_tasks=len(tasks))
    txn.path("meta/info.json").write_text(json.dumps(info, indent=4))
    if not (root / "meta" / "tasks_original.parquet").exists():
        shutil.copyfile(root / "meta" / "tasks.parquet", txn.path("meta/tasks_original.parquet"))
    log_path = root / "meta" / "relabel_log.json"
    log = json.loads(log_path.read_text()) if log_path.is_file() else []
    log.append({"tasks_before": report.tasks_before, "tasks_after": len(tasks), "changes": report.changes})
    txn.path("meta/relabel_log.json").write_text(json.dumps(log, indent=2))
