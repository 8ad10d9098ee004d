"""The data directory in use: restore at start-up, journal while running, compact, close.

persistence = Persistence(path, account, region).open(fresh=False)  # lock, check the format
... provision the template's resources ...
interrupted = persistence.restore()    # contents back; executions that were running, aborted
persistence.begin()                    # from here every change is journaled before it is acknowledged
... serve; resume the interrupted executions (recovery.py) ...
persistence.close()                    # compact into one snapshot, unlock
"""

from __future__ import annotations

import gc
import logging
import pickle
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lighthouse_tools.localcloud import atomicity
from lighthouse_tools.localcloud.durable import capture
from lighthouse_tools.localcloud.durable.datadir import FORMAT, DataDirectory, write_atomically
from lighthouse_tools.localcloud.durable.journal import (
    Journal,
    load_plain,
    recover_file,
    segment_name,
    segment_number,
    segments,
)
from lighthouse_tools.localcloud.durable.state import Backends, Restored, StateCodec

logger = logging.getLogger("lighthouse.localcloud.durable")

# A segment this large is folded into a new snapshot (in the background) so start-up stays fast.
COMPACT_AFTER_BYTES = 64 * 1024 * 1024
COMPACT_CHECK_SECONDS = 5.0
COMPACT_AFTER_RECORDS = 10_000
COMPACT_AFTER_START_SECONDS = 30.0


@dataclass
class RestoreReport:
    snapshot_loaded: bool = False
    journal_records: int = 0
    torn_bytes: int = 0
    interrupted: int = 0
    seconds: float = 0.0


class Persistence:
    def __init__(self, path: Path, account: str, region: str, fsync: bool = True) -> None:
        self.directory = DataDirectory(path)
        self.codec = StateCodec(Backends(account, region))
        self.restored = Restored()
        self.report = RestoreReport()
        self.journal: Journal | None = None
        self._fsync = fsync
        self._next_segment = 1
        self._compacting = threading.Lock()
        self._books = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def path(self) -> Path:
        return self.directory.path

    def open(self, fresh: bool = False) -> Persistence:
        self.directory.open(fresh=fresh)
        if self.directory.migrated_from is not None:
            logger.warning(
                "data directory migrated from format %s to %s; the original is kept in %s",
                self.directory.migrated_from,
                FORMAT,
                self.directory.backup,
            )
        return self

    def restore(self) -> list[dict[str, Any]]:
        """Load the snapshot and replay the journal into the (freshly provisioned) emulator; returns
        the executions that were running when the last process ended, now marked aborted."""
        began = time.perf_counter()
        # Restoring creates millions of objects and no garbage: the collector's passes over them (half
        # the time, measured) are skipped, and what was restored is then left out of later full passes.
        gc.disable()
        try:
            interrupted = self._restore()
        finally:
            gc.freeze()
            gc.enable()
        self.report.seconds = time.perf_counter() - began
        return interrupted

    def _restore(self) -> list[dict[str, Any]]:
        first_segment = 1
        snapshot_path = self.directory.snapshot_path
        if snapshot_path.exists():
            snapshot = load_plain(snapshot_path.read_bytes())
            first_segment = snapshot["next_segment"]
            self.codec.load(snapshot["state"], self.restored)
            self.report.snapshot_loaded = True
        found = [p for p in segments(self.path) if segment_number(p) >= first_segment]
        for path in found:
            size = path.stat().st_size
            records = recover_file(path)
            self.report.torn_bytes += size - path.stat().st_size
            for record in records:
                self.codec.apply(record, self.restored)
        self.report.journal_records = self.restored.records
        for skipped in sorted(self.restored.skipped):
            logger.warning("restore: %s is no longer in the template; its stored contents were not loaded", skipped)
        self._next_segment = max([first_segment, *(segment_number(p) + 1 for p in found)])
        interrupted = self.codec.place_executions(self.restored)
        self.report.interrupted = len(interrupted)
        return interrupted

    def begin(self) -> None:
        """Journal from here on; a directory without a snapshot gets one at once (it holds what was
        provisioned on first start, such as the generated master secret)."""
        self.journal = Journal(self.path / segment_name(self._next_segment), fsync=self._fsync)
        self._next_segment += 1
        capture.start(self.journal, self._observe)
        for record in self.restored.executions.values():
            if (
                record["status"] == "ABORTED"
                and record.get("error") == "States.ServiceRestart"
                and not record.get("journaled")
            ):
                ending = {k: record[k] for k in ("status", "stop_date", "error", "cause")}
                self.journal.append(("sfn_ended", record["arn"], ending))
                record["journaled"] = True
        if not self.directory.snapshot_path.exists():
            self.compact()
        elif self.report.journal_records > COMPACT_AFTER_RECORDS:
            # A long journal was replayed (the last process did not stop cleanly): fold it soon, so the
            # next start does not replay it again; not at once, when it would slow this start down.
            threading.Thread(target=self._compact_after_start, name="journal-compactor-start", daemon=True).start()
        self._watcher = threading.Thread(target=self._watch, name="journal-compactor", daemon=True)
        self._watcher.start()

    def _observe(self, change: tuple[Any, ...]) -> None:
        """Keep the books the snapshot needs beyond the services' contents (state machines created
        at run time, consumers' checkpoints) as the changes are journaled."""
        if change[0] in ("sfn_machine", "sfn_machine_deleted", "checkpoint"):
            with self._books:
                self.codec.note(change, self.restored)

    def checkpoint(self, function: str, shard: str, sequence: int) -> None:
        recorder = capture.active()
        if recorder is not None:
            recorder.record_later(("checkpoint", function, shard, sequence))

    def checkpoints(self, function: str) -> dict[str, int]:
        return dict(self.restored.checkpoints.get(function, {}))

    def note_execution_link(self, old: dict[str, Any], new_arn: str) -> None:
        old["cause"] = f"the local cloud restarted while this execution ran; it continues as {new_arn}"
        recorder = capture.active()
        if recorder is not None:
            ending = {k: old[k] for k in ("status", "stop_date", "error", "cause")}
            recorder.record(("sfn_ended", old["arn"], ending))

    def compact(self) -> None:
        """Start a new segment, then write everything as of now into the snapshot and drop the older
        segments. Changes made while the state is read are in the new segment too (replaying them on
        the snapshot is harmless: records are idempotent)."""
        assert self.journal is not None
        with self._compacting:
            segment = self._next_segment
            self._next_segment += 1
            self.journal.switch(self.path / segment_name(segment))
            with atomicity.lock, self._books:
                state = self.codec.capture(self.restored)
            payload = pickle.dumps({"format": FORMAT, "next_segment": segment, "state": state}, pickle.HIGHEST_PROTOCOL)
            write_atomically(self.directory.snapshot_path, payload)
            for old in segments(self.path):
                if segment_number(old) < segment:
                    old.unlink()

    def _watch(self) -> None:
        while not self._stop.wait(COMPACT_CHECK_SECONDS):
            journal = self.journal
            if journal is not None and journal.bytes_written > COMPACT_AFTER_BYTES:
                self._compact_quietly()

    def _compact_after_start(self) -> None:
        if not self._stop.wait(COMPACT_AFTER_START_SECONDS):
            self._compact_quietly()

    def _compact_quietly(self) -> None:
        try:
            self.compact()
        except Exception:
            logger.exception("compaction failed; the journal keeps growing until the next attempt")

    def close(self, compact: bool = True) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        try:
            if compact and self.journal is not None:
                self.compact()
        finally:
            capture.stop()
            if self.journal is not None:
                self.journal.close()
                self.journal = None
            self.directory.close()
