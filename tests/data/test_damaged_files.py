"""Damaged datasets: resuming, appending and `stats` raise one error naming the file and what is wrong, and write
nothing (a truncated mp4 is never appended to)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from data_helpers import episode_arrays, features_for, write_dataset

from smolvla.data import DatasetFormatError, DatasetWriter, LeRobotDataset, VideoEncoding
from smolvla.data.encode import encode_video
from smolvla.data.restats import write_dataset_stats

TOP = "videos/observation.images.top/chunk-000/file-000.mp4"
EPISODES = "meta/episodes/chunk-000/file-000.parquet"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("damaged") / "ds", lengths=(6, 5))


@pytest.fixture
def ds(pristine, tmp_path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "ds"))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _edit_info(root: Path, **changes) -> None:
    path = root / "meta" / "info.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))


def _truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# -- appending to a damaged mp4 ----------------------------------------------------------------------------------
def test_truncated_mp4_is_not_appended_to(ds):
    writer = DatasetWriter.resume(ds)
    _truncate(ds / TOP, 0.97)  # e.g. a copy cut short after the writer opened the dataset
    before = _files(ds)
    with pytest.raises(DatasetFormatError, match=r"file-000.mp4: video frame \d+ is incomplete: the file is truncated"):
        writer.add_episode(episode_arrays(4, 2), task="t")
    assert _files(ds) == before and not (ds / ".staging").exists()
    writer.close()
    with pytest.raises(DatasetFormatError, match=r"file-000.mp4: video frame \d+ is incomplete"):
        DatasetWriter.resume(ds)


def test_mp4_with_fewer_frames_than_its_metadata_is_refused_on_resume(ds):
    encode_video(episode_arrays(7, 0)["observation.images.top"], ds / TOP, 30, VideoEncoding())
    with pytest.raises(
        DatasetFormatError, match=r"file-000.mp4: holds 7 video frames but the dataset metadata expects 11"
    ):
        DatasetWriter.resume(ds)


def test_unreadable_mp4_is_refused_on_resume(ds):
    (ds / TOP).write_bytes(b"not an mp4")
    with pytest.raises(DatasetFormatError, match=r"file-000.mp4: cannot open video"):
        DatasetWriter.resume(ds)


# -- damaged metadata: one error naming the file ------------------------------------------------------------------
def _drop_episode_column(root: Path, column: str) -> None:
    table = pq.read_table(root / EPISODES)
    pq.write_table(table.drop_columns([column]), root / EPISODES)


def _staged_commit(root: Path, text: str) -> None:
    (root / ".staging" / "x").mkdir(parents=True)
    (root / ".staging" / "x" / "COMMIT").write_text(text)


DAMAGE = {
    "info-list": (
        lambda r: (r / "meta/info.json").write_text("[]"),
        r"meta/info.json: expected a JSON object \(a dataset's info\), got a list",
    ),
    "info-features-list": (
        lambda r: _edit_info(r, features=[]),
        r"meta/info.json: 'features' must be an object mapping feature names to specs, got \[\]",
    ),
    "info-total-str": (
        lambda r: _edit_info(r, total_episodes="2"),
        r"meta/info.json: 'total_episodes' must be a non-negative integer, got '2'",
    ),
    "info-fps-str": (lambda r: _edit_info(r, fps="30"), r"meta/info.json: 'fps' must be a positive number, got '30'"),
    "stats-list": (
        lambda r: (r / "meta/stats.json").write_text("[]"),
        r"meta/stats.json: expected an object \{feature: \{stat: values\}\}, got \[\]",
    ),
    "stats-text": (
        lambda r: (r / "meta/stats.json").write_text(json.dumps({"action": {"mean": ["a", "b"]}})),
        r"meta/stats.json: action/mean must be numbers, got \['a', 'b'\]",
    ),
    "feature-dtype": (
        lambda r: _edit_info(
            r,
            features=json.loads((r / "meta/info.json").read_text())["features"]
            | {"action": {"dtype": "floaty", "shape": [6]}},
        ),
        r"meta/info.json: feature 'action' has dtype 'floaty'; expected one of \['video', 'image', 'string', 'lang",
    ),
    "data-parquet": (
        lambda r: (r / "data/chunk-000/file-000.parquet").write_bytes(b"PAR1xxxxPAR1"),
        r"data/chunk-000/file-000.parquet: cannot read parquet \(ArrowInvalid",
    ),
    "episodes-column": (
        lambda r: _drop_episode_column(r, "videos/observation.images.top/to_timestamp"),
        r"file-000.parquet: last row \(episode 1\): columns \['videos/observation.images.top/to_timestamp'\] are",
    ),
    "commit-json": (
        lambda r: _staged_commit(r, "["),
        r"\.staging/x/COMMIT: not valid JSON \(Expecting value.*\); cannot complete the interrupted write",
    ),
    "commit-ints": (
        lambda r: _staged_commit(r, "[1, 2]"),
        r"\.staging/x/COMMIT: expected a JSON list of relative file paths, got \[1, 2\]",
    ),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_resume_names_the_damaged_file(ds, case):
    damage, match = DAMAGE[case]
    damage(ds)
    with pytest.raises(DatasetFormatError, match=match):
        DatasetWriter.resume(ds)


@pytest.mark.parametrize("case", ["info-list", "info-features-list", "stats-list", "stats-text", "data-parquet"])
def test_stats_and_reader_name_the_damaged_file(ds, case):
    damage, match = DAMAGE[case]
    damage(ds)
    with pytest.raises(DatasetFormatError, match=match):
        write_dataset_stats(ds)
    with pytest.raises(DatasetFormatError, match=match):
        LeRobotDataset(ds)


def test_a_dataset_without_episodes_yet_is_named_so(tmp_path):
    DatasetWriter.create(tmp_path / "ds", fps=30, features=features_for()).close()
    for read in (write_dataset_stats, LeRobotDataset):
        with pytest.raises(
            DatasetFormatError, match=r"info.json: total_episodes is 0: the dataset has no episodes yet"
        ):
            read(tmp_path / "ds")


def test_resume_refuses_a_layout_it_would_not_write(ds):
    _edit_info(ds, data_path="data/{chunk_index}/{file_index}.parquet")
    (ds / "data/0").mkdir()
    (ds / "data/chunk-000/file-000.parquet").rename(ds / "data/0/0.parquet")
    assert len(LeRobotDataset(ds)) == 11  # a valid dataset for readers
    with pytest.raises(
        DatasetFormatError, match=r"info.json: data_path is 'data/\{chunk_index\}/\{file_index\}.parquet'"
    ):
        DatasetWriter.resume(ds)


def test_episode_index_columns_must_be_integers(ds):
    table = pq.read_table(ds / EPISODES)
    i = table.column_names.index("data/file_index")
    pq.write_table(table.set_column(i, "data/file_index", table.column(i).cast("float64")), ds / EPISODES)
    with pytest.raises(DatasetFormatError, match=r"meta/episodes: columns \['data/file_index \(float64\)'\] must hold"):
        LeRobotDataset(ds)


# -- data files that do not match their metadata ---------------------------------------------------------------------
DATA = "data/chunk-000/file-000.parquet"


def _edit_data(root: Path, change) -> None:
    table = pq.read_table(root / DATA)
    pq.write_table(change(table), root / DATA)


def _set_column(name: str, values):
    return lambda t: t.set_column(t.column_names.index(name), name, pa.array(values(len(t))))


DATA_DAMAGE = {
    "missing-column": (
        lambda t: t.drop_columns(["action"]),
        r"file-000.parquet: features \['action'\] declared in info.json are missing from the file",
    ),
    "text-column": (
        _set_column("action", lambda n: [str(i) for i in range(n)]),
        r"file-000.parquet: feature 'action' should hold numbers of shape \[6\] per frame \(info.json\), got object",
    ),
    "unknown-episode": (
        _set_column("episode_index", lambda n: [9] * n),
        r"file-000.parquet: episode_index 9 has 11 rows; episodes metadata: no such episode",
    ),
}


@pytest.mark.parametrize("case", list(DATA_DAMAGE))
def test_stats_name_the_data_file_that_does_not_match(ds, case):
    change, match = DATA_DAMAGE[case]
    _edit_data(ds, change)
    before = _files(ds)
    with pytest.raises(DatasetFormatError, match=match):
        write_dataset_stats(ds)
    assert _files(ds) == before


def test_resume_refuses_a_data_file_missing_a_feature(ds):
    change, match = DATA_DAMAGE["missing-column"]
    _edit_data(ds, change)
    with pytest.raises(DatasetFormatError, match=match):
        DatasetWriter.resume(ds)


def test_appending_to_a_data_file_of_other_column_types_writes_nothing(ds):
    _edit_data(ds, DATA_DAMAGE["text-column"][0])
    writer, before = DatasetWriter.resume(ds), _files(ds)
    with pytest.raises(DatasetFormatError, match=r"file-000.parquet: row group 0 does not fit the columns of the new"):
        writer.add_episode(episode_arrays(4, 2), task="t")
    assert _files(ds) == before and not (ds / ".staging").exists()
