"""History's application service: record file changes, read any file or stream as it was."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from lighthouse.auth.nonces import NonceStore
from lighthouse.auth.tokens import Principal
from lighthouse.clock import Clock
from lighthouse.errors import ConcurrencyError, Forbidden, NotFound, ReplayDetected, ValidationFailed
from lighthouse.events import EventStore
from lighthouse.history import logic
from lighthouse.history.blobs import BlobStore, StoredBlob
from lighthouse.history.capture import Observed, observed
from lighthouse.history.models import (
    CaptureResult,
    Contributor,
    FileAt,
    FileChange,
    FileCreated,
    FileDeleted,
    FileDiff,
    FileModified,
    FileMoved,
    FileState,
    FileStats,
    FileTree,
    FileVersion,
    FileVersions,
    PostToolUseInput,
    RecordedChange,
    StreamAt,
    TreeEntry,
)
from lighthouse.history.store import HistoryIndex
from lighthouse.history.streams import as_document, fold_of
from lighthouse.paging import cursor_string, encode_cursor

ATTEMPTS = 3
# A tool call's id is remembered this long: a PostToolUse call repeated within it is a replay.
REPLAY_WINDOW_SECONDS = 7 * 86400


@dataclass(frozen=True)
class HistoryLimits:
    max_file_bytes: int = 1024 * 1024
    max_files: int = 200
    snapshot_every: int = 16


@dataclass(frozen=True)
class Content:
    """What is known of a file's new content: the bytes, or only metadata (and why)."""

    data: bytes | None
    note: str = ""
    size: int = 0


class HistoryService:
    def __init__(
        self,
        events: EventStore,
        index: HistoryIndex,
        blobs: BlobStore,
        clock: Clock,
        projects_of: Callable[[str], list[str]],
        limits: HistoryLimits | None = None,
        nonces: NonceStore | None = None,
    ) -> None:
        """`nonces`, when given, refuses a PostToolUse call whose tool_use_id was recorded before (a
        replay would record old content again as a new version)."""
        self._events = events
        self._nonces = nonces
        self.index = index
        self.blobs = blobs
        self._clock = clock
        self._projects_of = projects_of
        self.limits = limits or HistoryLimits()
        self._secrets = logic.IgnoreRules.of("")

    def require_member(self, principal: Principal, project: str) -> None:
        if principal.role != "admin" and project not in self._projects_of(principal.agent_id):
            raise Forbidden(
                f"only members of project {project!r} (or admins) may read or record its history", {"project": project}
            )

    # ---- capture ---------------------------------------------------------------------------------

    def capture(self, principal: Principal, project_override: str | None, payload: PostToolUseInput) -> CaptureResult:
        project = logic.project_of(payload.cwd, project_override)
        self.require_member(principal, project)

        def before(path: str) -> bytes | None:
            return self._latest_content(project, logic.relative_to(path, payload.cwd))

        changes, why_none = observed(payload, before)
        if len(changes) > self.limits.max_files:
            raise ValidationFailed(f"at most {self.limits.max_files} files per hook call, got {len(changes)}")
        scope = f"post-tool-use#{principal.agent_id}"
        if self._nonces is not None and payload.tool_use_id:
            try:
                self._nonces.remember(scope, payload.tool_use_id, self._clock.now(), REPLAY_WINDOW_SECONDS)
            except ReplayDetected:
                raise ReplayDetected(f"tool call {payload.tool_use_id!r} was already recorded: a replay") from None
        try:
            return self._capture(principal, project, payload, changes, why_none)
        except Exception:
            if self._nonces is not None and payload.tool_use_id:
                self._nonces.forget(scope, payload.tool_use_id)
            raise

    def _capture(
        self, principal: Principal, project: str, payload: PostToolUseInput, changes: list[Observed], why_none: str
    ) -> CaptureResult:
        source = f"{payload.tool_name}" + (f" ({payload.tool_use_id})" if payload.tool_use_id else "")
        # Every path is checked before anything is recorded: one bad path records nothing.
        located = [
            (change, logic.relative_to(change.path, payload.cwd),
             logic.relative_to(change.from_path, payload.cwd) if change.from_path else None)
            for change in changes
        ]  # fmt: skip
        recorded: list[RecordedChange] = []
        skipped = [why_none] if why_none else []
        for change, path, from_path in located:
            done = self._apply(project, change, path, from_path, principal.agent_id, source)
            if done is not None:
                recorded.append(done)
            else:
                skipped.append(f"{path}: " + ("not in the history" if change.change == "deleted" else "unchanged"))
        return CaptureResult(project=project, recorded=recorded, skipped=skipped)

    def _apply(
        self, project: str, change: Observed, path: str, from_path: str | None, agent: str, source: str
    ) -> RecordedChange | None:
        content = Content(change.content, change.note, change.size if change.content is None else 0)
        if change.change == "moved" and from_path:
            return self.move(project, from_path, path, content, agent=agent, source=source)
        if change.change == "deleted":
            return self.delete(project, path, agent=agent, source=source)
        return self.record(project, path, content, agent=agent, source=source)

    def record_workspace(
        self, project: str, agent: str, source: str, changes: Iterable[dict[str, Any]], read: Callable[[str], bytes]
    ) -> list[RecordedChange]:
        """A pipeline tool stage's workspace changes (`{"path", "change": written|created|modified|deleted}`)."""
        recorded: list[RecordedChange] = []
        for change in list(changes)[: self.limits.max_files]:
            path = logic.confine(str(change["path"]))
            if change.get("change") == "deleted":
                done = self.delete(project, path, agent=agent, source=source)
            else:
                done = self.record(project, path, Content(read(path)), agent=agent, source=source)
            if done is not None:
                recorded.append(done)
        return recorded

    def record(self, project: str, path: str, content: Content, *, agent: str, source: str) -> RecordedChange | None:
        """Record `path`'s new content (None when it is the content already recorded)."""
        return self._retrying(project, path, lambda before: self._content_event(before, path, content, agent, source))

    def delete(self, project: str, path: str, *, agent: str, source: str) -> RecordedChange | None:
        def deleted(before: FileState) -> FileChange | None:
            if not before.exists:
                return None
            return FileDeleted(path=path, agent=agent, source=source, at=self._instant(before), removed=before.lines)

        return self._retrying(project, path, deleted)

    def _retrying(
        self, project: str, path: str, decide: Callable[[FileState], FileChange | None]
    ) -> RecordedChange | None:
        """Append what `decide` makes of the file's latest state, again from a fresh read when another
        writer got there first (blob writes are idempotent: content-addressed)."""
        for attempt in range(ATTEMPTS):
            before = self.index.current(project, path)
            event = decide(before)
            if event is None:
                return None
            try:
                return self._append(project, before, event)
            except ConcurrencyError:
                if attempt == ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def move(
        self, project: str, from_path: str, to_path: str, content: Content, *, agent: str, source: str
    ) -> RecordedChange | None:
        """The file leaves `from_path` (FILE_MOVED out) and arrives at `to_path` (FILE_MOVED in)."""
        old = self.index.current(project, from_path)
        if old.exists:
            out = FileMoved(path=from_path, agent=agent, source=source, at=self._instant(old),
                            from_path=from_path, to_path=to_path, direction="out")  # fmt: skip
            self._append(project, old, out)
        if content.data is None and not content.note and old.exists:
            content = Content(self._latest_content(project, from_path) if old.stored else None, old.note, old.size)
        before = self.index.current(project, to_path)
        event = self._content_event(before, to_path, content, agent, source)
        if event is None:
            return None
        arrived = FileMoved(**{**event.model_dump(), "from_path": from_path, "to_path": to_path, "direction": "in"})
        return self._append(project, before, arrived)

    def _instant(self, before: FileState) -> float:
        """Now, but never before the stream's previous change: instants follow versions."""
        return max(self._clock.now(), before.changed_at)

    def _content_event(
        self, before: FileState, path: str, content: Content, agent: str, source: str
    ) -> FileChange | None:
        data, note = self._storable(path, content)
        kind = FileModified if before.exists else FileCreated
        at = self._instant(before)
        if data is None:
            size = len(content.data) if content.data is not None else content.size
            return kind(path=path, agent=agent, source=source, at=at, size=size, note=note or "content unknown")
        digest = logic.sha256(data)
        if before.exists and before.sha256 == digest:
            return None
        blob = self._store(before, data)
        added, removed = logic.line_changes(self._latest_of(before), data)
        return kind(
            path=path, agent=agent, source=source, at=at, sha256=digest, size=len(data),
            lines=len(logic.lines_of(data)), added=added, removed=removed, stored=True, base=blob.base,
        )  # fmt: skip

    def _storable(self, path: str, content: Content) -> tuple[bytes | None, str]:
        """The content to store (None: metadata only) and why not, when not."""
        if content.data is None:
            return None, content.note
        reason = self._secrets.reason(path)
        if reason:
            return None, reason
        if len(content.data) > self.limits.max_file_bytes:
            return None, f"larger than {self.limits.max_file_bytes} bytes: content not stored"
        return content.data, ""

    def _store(self, before: FileState, data: bytes) -> StoredBlob:
        """The blob for `data`: the one stored already, a delta on the stream's snapshot, or a full copy."""
        existing = self.blobs.stored(logic.sha256(data))
        if existing is not None:
            return existing
        if before.base is not None:
            base = self.blobs.read(before.base)
            payload = logic.delta(base, data)
            if not logic.needs_snapshot(before, len(zlib.compress(payload, 1)), len(data), self.limits.snapshot_every):
                return self.blobs.put_delta(data, before.base, payload)
        return self.blobs.put_full(data)

    def _append(self, project: str, before: FileState, event: FileChange) -> RecordedChange:
        stream = logic.file_stream(project, event.path)
        start = before if before.version else FileState(project=project, path=event.path)
        prepared = self._events.prepare(stream, [event], before.version, {"agent": event.agent})
        after = logic.FILE_FOLD.evolve(start, prepared[0])
        row = logic.version_row(prepared[0], after)
        self._events.commit(prepared, self.index.writes(project, before, after, row))
        return RecordedChange(
            path=event.path, type=event.TYPE, version=after.version, sha256=event.sha256, stored=event.stored,
            note=event.note,
        )  # fmt: skip

    # ---- reading ---------------------------------------------------------------------------------

    def _latest_of(self, state: FileState) -> bytes | None:
        return self.blobs.read(state.sha256) if state.exists and state.stored and state.sha256 else None

    def _latest_content(self, project: str, path: str) -> bytes | None:
        return self._latest_of(self.index.current(project, path))

    def current(self, principal: Principal, project: str, path: str) -> tuple[FileState, bytes | None]:
        self.require_member(principal, project)
        state = self.index.current(project, logic.confine(path))
        if not state.version:
            raise NotFound(f"no file {path!r} in project {project!r}'s history", {"project": project, "path": path})
        return state, self._latest_of(state)

    def content_at(
        self, project: str, path: str, instant: float, state: FileState | None = None
    ) -> tuple[FileVersion | None, bytes | None]:
        """The version in force at `instant` and its content (verified), or None where unknown.
        `state`: the file's latest state, when the caller has read it already."""
        row = self.index.at(project, path, instant, state)
        if row is None or not row.exists or not row.stored or row.sha256 is None:
            return row, None
        return row, self.blobs.read(row.sha256)

    def file_at(self, principal: Principal, project: str, path: str, instant: float) -> FileAt:
        self.require_member(principal, project)
        path = logic.confine(path)
        row, data = self.content_at(project, path, instant)
        if row is None:
            raise NotFound(f"{path!r} had no recorded version at {logic.iso(instant)}", {"path": path})
        text = _text(data)
        return FileAt(
            project=project, path=path, at=instant, version=row.version, exists=row.exists, sha256=row.sha256,
            size=row.size, stored=row.stored, note=row.note, content=text,
            content_b64=base64.b64encode(data).decode() if data is not None and text is None else None,
        )  # fmt: skip

    def versions(self, principal: Principal, project: str, path: str, limit: int, cursor: str | None) -> FileVersions:
        self.require_member(principal, project)
        path = logic.confine(path)
        rows, last = self.index.versions(project, path, limit, cursor_string(cursor))
        if not rows and cursor is None:
            raise NotFound(f"no file {path!r} in project {project!r}'s history", {"path": path})
        return FileVersions(project=project, path=path, versions=rows, next_token=encode_cursor(last) if last else None)

    def diff(self, principal: Principal, project: str, path: str, start: float, end: float) -> FileDiff:
        self.require_member(principal, project)
        path = logic.confine(path)
        old_row, old = self.content_at(project, path, start)
        new_row, new = self.content_at(project, path, end)
        if old_row is None and new_row is None:
            raise NotFound(f"{path!r} had no recorded version at either instant", {"path": path})
        for row, data in ((old_row, old), (new_row, new)):
            if row is not None and row.exists and data is None:
                raise ValidationFailed(f"{path!r} v{row.version} has no stored content: {row.note}", {"path": path})
        added, removed = logic.line_changes(old, new)
        return FileDiff(
            project=project, path=path, from_instant=start, to_instant=end,
            from_version=old_row.version if old_row else 0, to_version=new_row.version if new_row else 0,
            added=added, removed=removed,
            diff=logic.unified_diff(path, old, new, (logic.iso(start), logic.iso(end))),
        )  # fmt: skip

    def stats(self, principal: Principal, project: str, path: str) -> FileStats:
        state, _ = self.current(principal, project, path)
        return FileStats(
            project=project, path=state.path, versions=state.version,
            contributors=[Contributor(agent=agent, **{k: v for k, v in totals.items()})  # type: ignore[arg-type]
                          for agent, totals in sorted(state.contributors.items(), key=lambda kv: -kv[1]["changes"])],
            added=state.total_added, removed=state.total_removed, first_at=state.first_at or None,
            last_at=state.changed_at or None,
        )  # fmt: skip

    def tree(self, principal: Principal, project: str, instant: float | None = None) -> FileTree:
        self.require_member(principal, project)
        entries: list[TreeEntry] = []
        for state in self.index.tree(project):
            if instant is None or state.changed_at <= instant:
                if state.exists and (instant is None or state.first_at <= instant):
                    entries.append(_entry(state))
                continue
            if state.first_at > instant:
                continue
            row = self.index.at(project, state.path, instant, state)
            if row is not None and row.exists:
                entries.append(_row_entry(state.path, row))
        return FileTree(project=project, at=instant, files=sorted(entries, key=lambda e: e.path))

    def stream_at(self, principal: Principal, stream_id: str, instant: float) -> StreamAt:
        fold, readers = fold_of(stream_id)
        if stream_id.startswith("file#"):
            self.require_member(principal, stream_id.split("#")[1])
        state, version = fold.initial(), 0
        for stored in self._events.load(stream_id):
            if stored.recorded_at > instant:
                break
            state, version = fold.evolve(state, stored), stored.version
        if version == 0:
            raise NotFound(f"stream {stream_id!r} had no events at {logic.iso(instant)}", {"stream": stream_id})
        document = as_document(state)
        participant = stream_id.startswith("file#") or principal.agent_id in readers(document, stream_id)
        if principal.role != "admin" and not participant:
            raise Forbidden(f"only its participants and admins may read {stream_id!r}", {"stream": stream_id})
        return StreamAt(stream_id=stream_id, at=instant, version=version, state=document)


def _entry(state: FileState) -> TreeEntry:
    return TreeEntry(
        path=state.path, exists=state.exists, size=state.size, sha256=state.sha256, version=state.version,
        changed_at=state.changed_at, agent=state.agent, stored=state.stored,
    )  # fmt: skip


def _row_entry(path: str, row: FileVersion) -> TreeEntry:
    return TreeEntry(
        path=path, exists=True, size=row.size, sha256=row.sha256, version=row.version, changed_at=row.at,
        agent=row.agent, stored=row.stored,
    )  # fmt: skip


def _text(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
