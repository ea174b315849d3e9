"""One writer per dataset: a second writer (or `stats`) fails at once and touches nothing; crashes free the lock."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap

import pytest
from data_helpers import episode_arrays, write_dataset

from smolvla.data import DatasetWriter
from smolvla.data.lock import DatasetLockedError
from smolvla.data.restats import write_dataset_stats

BUSY = r"ds is being written by {}; only one writer \(DatasetWriter, stats\) may change a dataset at a time"


@pytest.fixture
def small(tmp_path):
    return write_dataset(tmp_path / "ds", lengths=(6,))


def test_second_writer_in_the_process_fails_and_keeps_the_first_ones_staging(small):
    first = DatasetWriter.resume(small)
    in_flight = small / ".staging" / "episodes-000001-000001"  # what `first` stages while saving a batch
    in_flight.mkdir(parents=True)
    with pytest.raises(DatasetLockedError, match=BUSY.format("another writer in this process")):
        DatasetWriter.resume(small)
    with pytest.raises(DatasetLockedError, match=BUSY.format("another writer in this process")):
        write_dataset_stats(small)
    assert in_flight.is_dir()  # the refused resume did not recover() (delete) it
    in_flight.rmdir()
    assert first.add_episode(episode_arrays(5, 1), task="t") == 1
    first.close()
    with pytest.raises(RuntimeError, match="this DatasetWriter was closed; reopen it with DatasetWriter.resume"):
        first.add_episode(episode_arrays(5, 2), task="t")
    with DatasetWriter.resume(small) as again:
        assert again.add_episode(episode_arrays(5, 2), task="t") == 2
    write_dataset_stats(small, cameras=False)  # the `with` released it


def test_a_dropped_writer_releases_the_dataset(small):
    writer = DatasetWriter.resume(small)
    del writer
    gc.collect()
    DatasetWriter.resume(small).close()


def test_other_process_holder_is_named_and_its_crash_frees_the_lock(small):
    holder = textwrap.dedent(
        f"""
        import sys
        from smolvla.data import DatasetWriter
        writer = DatasetWriter.resume({str(small)!r})
        print("locked", flush=True)
        sys.stdin.read()
        """
    )
    child = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(DatasetLockedError, match=BUSY.format(f"process {child.pid}")):
            DatasetWriter.resume(small)
    finally:
        child.kill()  # SIGKILL: no cleanup code runs, the kernel drops the lock
        child.wait()
    DatasetWriter.resume(small).close()


def test_a_missing_root_is_named(tmp_path):
    for open_ in (DatasetWriter.resume, write_dataset_stats):
        with pytest.raises(FileNotFoundError, match=r"dataset root .*nope does not exist or is not a directory"):
            open_(tmp_path / "nope")
