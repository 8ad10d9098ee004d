"""An append-only journal of state changes with group commit.

Each record is framed as `<length u32><crc32 u32><payload>`; the payload is a pickle of plain
Python values (dicts, lists, strings, numbers: never emulator classes, so a newer emulator reads an
older journal). A writer thread takes whatever callers appended since its last round, writes it with
one `write` and one `fsync`, then wakes the callers waiting for their records: a request is answered
only once its changes are on disk, and concurrent requests share an fsync instead of queueing for one
each. On reading, a record whose frame runs past the end of the file or whose checksum does not match
(a crash in the middle of a write) ends the journal: it and anything after it are dropped and the file
is cut back to the last whole record, so a change is either applied whole or not at all.

Why a journal rather than a storage engine under moto: every service keeps moto's own in-memory
structures (and their behaviour) unchanged, a change costs one buffered append, and a snapshot plus
the journal's tail restores everything at start-up without replaying requests.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_HEADER = struct.Struct("<II")
# Far above any real record (a DynamoDB item is at most 400 KB); a larger length is a torn header.
MAX_RECORD_BYTES = 64 * 1024 * 1024

logger = logging.getLogger("lighthouse.localcloud.durable")


_PLAIN_CLASSES = {
    ("datetime", "datetime"),
    ("datetime", "date"),
    ("datetime", "timedelta"),
    ("datetime", "timezone"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "bytearray"),
}


class _PlainUnpickler(pickle.Unpickler):
    """Loads plain values only: a journal or snapshot that names any other class is refused, so the
    files can neither run code nor tie the format to the emulator's classes."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PLAIN_CLASSES:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not a plain value")


def load_plain(data: bytes) -> Any:
    return _PlainUnpickler(io.BytesIO(data)).load()


def frame(record: Any) -> bytes:
    payload = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


@dataclass
class ReadResult:
    records: list[Any]
    whole_bytes: int  # where the last whole record ends
    dropped_bytes: int  # a torn or corrupt tail after it


def read_records(path: Path) -> ReadResult:
    """Every whole record of a journal file, in order, and how much of a torn tail follows them."""
    data = path.read_bytes() if path.exists() else b""
    records: list[Any] = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, checksum = _HEADER.unpack_from(data, offset)
        start, end = offset + _HEADER.size, offset + _HEADER.size + length
        if length > MAX_RECORD_BYTES or end > len(data):
            break
        payload = data[start:end]
        if zlib.crc32(payload) != checksum:
            break
        try:
            records.append(load_plain(payload))
        except Exception:  # a checksum collision on garbage: treat as torn as well
            break
        offset = end
    return ReadResult(records, offset, len(data) - offset)


def recover_file(path: Path) -> list[Any]:
    """Read a journal and cut off a torn tail, saying so in the log."""
    result = read_records(path)
    if result.dropped_bytes:
        logger.warning(
            "journal %s: kept %d whole records; dropped %d bytes of a torn or corrupt last record",
            path.name,
            len(result.records),
            result.dropped_bytes,
        )
        with path.open("r+b") as handle:
            handle.truncate(result.whole_bytes)
            handle.flush()
            os.fsync(handle.fileno())
    return result.records


class Journal:
    """Appends framed records to one open segment; `append` returns a ticket, `wait` blocks until
    the record with that ticket is on disk."""

    def __init__(self, path: Path, fsync: bool = True) -> None:
        self._lock = threading.Lock()
        self._written = threading.Condition(self._lock)
        self._pending: list[bytes] = []
        self._appended = 0  # tickets handed out
        self._durable = 0  # tickets on disk
        self._fsync = fsync
        self._closed = False
        self._error: BaseException | None = None
        self._file = path.open("ab")
        self.path = path
        self.bytes_written = path.stat().st_size
        self.records_written = 0
        self.commits = 0
        self._writer = threading.Thread(target=self._run, name="journal-writer", daemon=True)
        self._writer.start()

    def append(self, record: Any) -> int:
        framed = frame(record)
        with self._lock:
            if self._closed:
                raise RuntimeError("the journal is closed")
            self._pending.append(framed)
            self._appended += 1
            self._written.notify_all()
            return self._appended

    def wait(self, ticket: int, timeout: float = 30.0) -> None:
        with self._lock:
            if not self._written.wait_for(lambda: self._durable >= ticket or self._error is not None, timeout):
                raise TimeoutError("the journal did not reach the disk in time")
            if self._error is not None and self._durable < ticket:
                raise RuntimeError(f"the journal could not be written: {self._error}")

    def append_durably(self, record: Any) -> None:
        self.wait(self.append(record))

    def switch(self, path: Path) -> None:
        """Continue in a new segment (for a snapshot): everything appended so far goes to the old one."""
        with self._lock:
            self._written.wait_for(lambda: self._durable >= self._appended or self._error is not None)
            self._file.close()
            self._file = path.open("ab")
            self.path = path
            self.bytes_written = 0

    def close(self) -> None:
        with self._lock:
            self._written.wait_for(lambda: self._durable >= self._appended or self._error is not None, 30.0)
            self._closed = True
            self._written.notify_all()
        self._writer.join(timeout=5)
        self._file.close()

    def _run(self) -> None:
        while True:
            with self._lock:
                self._written.wait_for(lambda: bool(self._pending) or self._closed)
                if not self._pending and self._closed:
                    return
                batch, self._pending = self._pending, []
                last = self._appended
                handle = self._file
            try:
                data = b"".join(batch)
                handle.write(data)
                handle.flush()
                if self._fsync:
                    os.fsync(handle.fileno())
            except BaseException as error:  # a full disk: every waiter is told, nothing is acknowledged
                with self._lock:
                    self._error = error
                    self._written.notify_all()
                logger.error("journal %s: write failed: %s", self.path, error)
                return
            with self._lock:
                self._durable = last
                self.bytes_written += len(data)
                self.records_written += len(batch)
                self.commits += 1
                self._written.notify_all()


def segment_name(number: int) -> str:
    return f"journal-{number:08d}.log"


def segment_number(path: Path) -> int:
    return int(path.name.removeprefix("journal-").removesuffix(".log"))


def segments(directory: Path) -> Iterator[Path]:
    yield from sorted(directory.glob("journal-*.log"), key=segment_number)
