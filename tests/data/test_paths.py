"""Paths read from a dataset's files (COMMIT lists, info.json templates, image rows) stay inside the dataset."""

from __future__ import annotations

import json
import shutil

import pytest
from data_helpers import write_dataset

from smolvla.data import DatasetWriter, LeRobotDataset, load_meta
from smolvla.data.paths import confine


@pytest.fixture
def small(tmp_path):
    return write_dataset(tmp_path / "ds", lengths=(6, 5))


def _edit_info(root, **changes) -> None:
    path = root / "meta" / "info.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))


def test_confine_accepts_inside_and_refuses_the_rest(tmp_path):
    (tmp_path / "root" / "a").mkdir(parents=True)
    assert confine(tmp_path / "root", "a/../b.txt", "x.json") == tmp_path / "root" / "a/../b.txt"
    with pytest.raises(ValueError, match=r"path 'a/../../b' in x.json escapes .*root \(it resolves to .*/b\)"):
        confine(tmp_path / "root", "a/../../b", "x.json")
    with pytest.raises(ValueError, match=r"path '/etc/passwd' in x.json is absolute; only paths inside .*root"):
        confine(tmp_path / "root", "/etc/passwd", "x.json")
    with pytest.raises(ValueError, match=r"path '' in x.json is not a non-empty relative path"):
        confine(tmp_path / "root", "", "x.json")
    (tmp_path / "root" / "link").symlink_to(tmp_path)
    with pytest.raises(ValueError, match=r"path 'link/x' in x.json escapes"):
        confine(tmp_path / "root", "link/x", "x.json")


def test_commit_listing_a_path_outside_the_dataset_moves_nothing(small, tmp_path):
    stage = small / ".staging" / "episodes-000002-000002"
    stage.mkdir(parents=True)
    (stage / "COMMIT").write_text(json.dumps(["meta/stats.json", "../../payload"]))
    (stage / "meta").mkdir()
    (stage / "meta" / "stats.json").write_text("{}")
    (small / "payload").write_text("inside")  # what stage/../../payload names; the target is outside the dataset
    with pytest.raises(ValueError, match=r"path '../../payload' in .*COMMIT escapes .*ds \(it resolves to"):
        DatasetWriter.resume(small)
    assert not (tmp_path.parent / "payload").exists() and (small / "payload").read_text() == "inside"
    assert (stage / "meta" / "stats.json").read_text() == "{}"  # checked before anything moved
    (stage / "COMMIT").write_text(json.dumps(["/tmp/payload"]))
    with pytest.raises(ValueError, match=r"path '/tmp/payload' in .*COMMIT is absolute"):
        DatasetWriter.resume(small)


def test_staging_dir_symlinked_outside_is_refused(small, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "meta").mkdir(parents=True)
    (elsewhere / "meta" / "info.json").write_text("{}")
    (elsewhere / "COMMIT").write_text(json.dumps(["meta/info.json"]))
    (small / ".staging").mkdir()
    (small / ".staging" / "evil").symlink_to(elsewhere)
    with pytest.raises(ValueError, match=r"path 'evil' in .*\.staging escapes"):
        DatasetWriter.resume(small)
    assert (elsewhere / "COMMIT").exists() and (small / "meta" / "info.json").read_text() != "{}"


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (
            {"data_path": "../../x/file-{chunk_index}-{file_index}.parquet"},
            r"path '../../x/file-0-0.parquet' in .*info.json \(data_path\) escapes",
        ),
        (
            {"data_path": "/tmp/file-{chunk_index}-{file_index}.parquet"},
            r"path '/tmp/file-0-0.parquet' in .*info.json \(data_path\) is absolute",
        ),
        (
            {"video_path": "../{video_key}/{chunk_index}/{file_index}.mp4"},
            r"path '../observation.images.top/0/0.mp4' in .*info.json \(video_path\) escapes",
        ),
    ],
    ids=["data-escape", "data-absolute", "video-escape"],
)
def test_path_templates_in_info_stay_inside(small, changes, match):
    _edit_info(small, **changes)
    with pytest.raises(ValueError, match=match):
        load_meta(small)


def test_data_dir_symlinked_outside_is_refused(small, tmp_path):
    shutil.move(small / "data", tmp_path / "outside")
    (small / "data").symlink_to(tmp_path / "outside")
    with pytest.raises(
        ValueError, match=r"path 'data/chunk-000/file-000.parquet' in .*info.json \(data_path\) escapes"
    ):
        LeRobotDataset(small)


def test_template_with_unknown_field_names_info_json(small):
    _edit_info(small, data_path="data/{episode_chunk}.parquet")
    with pytest.raises(ValueError, match=r"info.json: data_path template .* cannot be filled from \['chunk_index',"):
        load_meta(small)
