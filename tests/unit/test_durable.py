"""The data directory's parts without an emulator: journal framing and group commit, torn records,
the lock, format versions and migrations, and how interrupted executions are named and timed."""

from __future__ import annotations

import json
import pickle
import struct
import threading
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lighthouse_tools.localcloud.durable import datadir
from lighthouse_tools.localcloud.durable.datadir import DataDirectory, DataDirectoryError
from lighthouse_tools.localcloud.durable.journal import Journal, frame, read_records, recover_file
from lighthouse_tools.localcloud.durable.recovery import restart_name, resumed_input

RECORDS = [("ddb", [("t", {"S": "a"}, None, {"pk": {"S": "a"}})], []), ("checkpoint", "f", "shard", 7)]


def _written(path: Path, records: list[object]) -> Path:
    path.write_bytes(b"".join(frame(record) for record in records))
    return path


def test_whole_records_read_back_in_order(tmp_path: Path) -> None:
    result = read_records(_written(tmp_path / "j.log", RECORDS))
    assert result.records == RECORDS
    assert result.dropped_bytes == 0


@pytest.mark.parametrize("cut", [1, 5, 8, 20])
def test_a_torn_last_record_is_dropped_and_the_file_cut_back(tmp_path: Path, cut: int) -> None:
    path = _written(tmp_path / "j.log", RECORDS)
    whole = len(frame(RECORDS[0]))
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size - cut)
    assert recover_file(path) == RECORDS[:1]
    assert path.stat().st_size == whole


def test_a_corrupt_record_ends_the_journal(tmp_path: Path) -> None:
    path = _written(tmp_path / "j.log", RECORDS)
    data = bytearray(path.read_bytes())
    data[len(frame(RECORDS[0])) + 10] ^= 0xFF  # a flipped bit inside the second record's payload
    path.write_bytes(bytes(data))
    result = read_records(path)
    assert result.records == RECORDS[:1]
    assert result.dropped_bytes == len(frame(RECORDS[1]))


def test_a_record_naming_a_class_is_refused_as_corrupt(tmp_path: Path) -> None:
    payload = pickle.dumps(Path("/etc"))  # loading it would construct an arbitrary class
    path = tmp_path / "j.log"
    path.write_bytes(frame(RECORDS[0]) + struct.pack("<II", len(payload), zlib.crc32(payload)) + payload)
    assert read_records(path).records == RECORDS[:1]


def test_concurrent_appends_share_fsyncs_and_all_reach_the_file(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.log")
    barrier = threading.Barrier(16)

    def write(n: int) -> None:
        barrier.wait()
        for i in range(50):
            journal.append_durably(("checkpoint", f"f{n}", "s", i))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    journal.close()
    records = read_records(tmp_path / "j.log").records
    assert len(records) == 800
    for n in range(16):  # each writer's records in its own order
        assert [r[3] for r in records if r[1] == f"f{n}"] == list(range(50))
    assert journal.commits < 800


def test_switch_leaves_earlier_records_in_the_old_segment(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "a.log")
    journal.append(RECORDS[0])
    journal.switch(tmp_path / "b.log")
    journal.append_durably(RECORDS[1])
    journal.close()
    assert read_records(tmp_path / "a.log").records == RECORDS[:1]
    assert read_records(tmp_path / "b.log").records == RECORDS[1:]


def test_one_process_per_directory(tmp_path: Path) -> None:
    first = DataDirectory(tmp_path / "data").open()
    with pytest.raises(DataDirectoryError, match=r"is in use by lighthouse up \(pid \d+\)"):
        DataDirectory(tmp_path / "data").open()
    first.close()
    DataDirectory(tmp_path / "data").open().close()  # free again once the holder lets go


def test_fresh_empties_the_directory(tmp_path: Path) -> None:
    directory = DataDirectory(tmp_path / "data").open()
    (tmp_path / "data" / "journal-00000001.log").write_bytes(b"x")
    directory.close()
    DataDirectory(tmp_path / "data").open(fresh=True).close()
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["FORMAT", "lock"]


def test_a_newer_format_is_refused_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "FORMAT").write_text(json.dumps({"format": datadir.FORMAT + 1}))
    with pytest.raises(DataDirectoryError, match="written by a newer Lighthouse"):
        DataDirectory(tmp_path / "data").open()
    assert json.loads((tmp_path / "data" / "FORMAT").read_text())["format"] == datadir.FORMAT + 1


def test_a_foreign_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("mine")
    with pytest.raises(DataDirectoryError, match="not a Lighthouse data directory"):
        DataDirectory(tmp_path / "data").open()


def test_an_older_format_is_migrated_once_after_a_backup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "FORMAT").write_text(json.dumps({"format": 1}))
    (data / "snapshot.pickle").write_bytes(b"old")
    steps: list[Path] = []

    def rewrite(path: Path) -> None:
        steps.append(path)
        (path / "snapshot.pickle").write_bytes(b"new")

    monkeypatch.setattr(datadir, "FORMAT", 2)
    monkeypatch.setitem(datadir.MIGRATIONS, 1, rewrite)
    directory = DataDirectory(data).open()
    directory.close()
    assert steps == [data]
    assert directory.migrated_from == 1
    assert directory.backup is not None
    assert (directory.backup / "snapshot.pickle").read_bytes() == b"old"
    assert json.loads((data / "FORMAT").read_text())["format"] == 2
    DataDirectory(data).open().close()
    assert steps == [data]  # once


def test_restarted_executions_get_linked_unique_names() -> None:
    assert restart_name("el-1", set()) == "el-1-restart1"
    assert restart_name("el-1-restart1", set()) == "el-1-restart2"
    assert restart_name("el-1", {"el-1-restart1"}) == "el-1-restart2"
    long = "x" * 80
    assert len(restart_name(long, set())) == 80


def test_a_resumed_wait_keeps_its_deadline() -> None:
    started = datetime(2026, 1, 1, tzinfo=UTC)
    record = {"input": json.dumps({"elicitation_id": "e", "timeout_seconds": 60}), "start_date": started}
    assert json.loads(resumed_input(record, started + timedelta(seconds=20.5)))["timeout_seconds"] == 40
    assert json.loads(resumed_input(record, started + timedelta(hours=1)))["timeout_seconds"] == 1  # at once
    plain = {"input": json.dumps({"task_id": "t"}), "start_date": started}
    assert json.loads(resumed_input(plain, started + timedelta(hours=1))) == {"task_id": "t"}
