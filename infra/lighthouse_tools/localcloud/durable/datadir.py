"""The data directory: its lock, its format version and the files in it.

    <dir>/FORMAT               {"format": N, "written_by": "<lighthouse version>"}
    <dir>/lock                 held (flock) by the one `lighthouse up` that uses the directory
    <dir>/snapshot.pickle      the state as of the start of journal segment `next_segment`
    <dir>/journal-NNNNNNNN.log the changes since, in order

A directory in an older format is migrated once, after a copy of it is kept next to it; a directory
in a newer format than this Lighthouse knows is refused (an older Lighthouse must not guess).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

FORMAT = 1
DEFAULT_DATA_DIR = Path(".lighthouse/data")
DATA_DIR_VARIABLE = "LIGHTHOUSE_DATA_DIR"

# format N -> a function that rewrites a directory in format N into format N + 1, in place.
MIGRATIONS: dict[int, Callable[[Path], None]] = {}


class DataDirectoryError(RuntimeError):
    """The directory cannot be used (locked by another process, or from a newer Lighthouse)."""


def resolve(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    configured = os.environ.get(DATA_DIR_VARIABLE)
    return Path(configured) if configured else DEFAULT_DATA_DIR


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("lighthouse")
    except Exception:
        return "unknown"


class DataDirectory:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_file: IO[str] | None = None
        self.migrated_from: int | None = None
        self.backup: Path | None = None

    @property
    def snapshot_path(self) -> Path:
        return self.path / "snapshot.pickle"

    def open(self, fresh: bool = False) -> DataDirectory:
        """Lock the directory (creating it), then wipe it (`fresh`) or bring its format up to date."""
        self.path.mkdir(parents=True, exist_ok=True)
        lock = (self.path / "lock").open("a+")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            lock.close()
            raise DataDirectoryError(
                f"the data directory {self.path} is in use by {holder}; stop that `lighthouse up` first, "
                "or give this one another --data-dir"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"lighthouse up (pid {os.getpid()})\n")
        lock.flush()
        self._lock_file = lock
        try:
            if fresh:
                self._wipe()
            self._check_format()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def _wipe(self) -> None:
        for entry in self.path.iterdir():
            if entry.name == "lock":
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def _check_format(self) -> None:
        marker = self.path / "FORMAT"
        if not marker.exists():
            if any(p.name not in ("lock",) for p in self.path.iterdir()):
                raise DataDirectoryError(
                    f"{self.path} holds files but no FORMAT marker: it is not a Lighthouse data directory "
                    "(or it is damaged); point --data-dir elsewhere, or start it over with --fresh"
                )
            self._write_format(FORMAT)
            return
        try:
            found = int(json.loads(marker.read_text())["format"])
        except (ValueError, KeyError, TypeError) as error:
            raise DataDirectoryError(f"{marker} is unreadable ({error}); restore a backup or use --fresh") from None
        if found > FORMAT:
            raise DataDirectoryError(
                f"the data directory {self.path} has format {found}, written by a newer Lighthouse; this one "
                f"reads formats up to {FORMAT}. Upgrade Lighthouse, or use another --data-dir"
            )
        if found < FORMAT:
            self._migrate(found)

    def _migrate(self, found: int) -> None:
        backup = self.path.with_name(f"{self.path.name}.format-{found}.backup-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copytree(self.path, backup, ignore=shutil.ignore_patterns("lock"))
        for version in range(found, FORMAT):
            step = MIGRATIONS.get(version)
            if step is None:
                raise DataDirectoryError(f"no migration from data format {version} to {version + 1}")
            step(self.path)
            self._write_format(version + 1)
        self.migrated_from, self.backup = found, backup

    def _write_format(self, number: int) -> None:
        marker = self.path / "FORMAT"
        temporary = marker.with_suffix(".tmp")
        temporary.write_text(json.dumps({"format": number, "written_by": _version()}) + "\n")
        os.replace(temporary, marker)


def write_atomically(path: Path, data: bytes) -> None:
    """Write, fsync, rename over, fsync the directory: the file is either the old one or the new one."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
