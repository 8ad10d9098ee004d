"""History's pure decisions: paths and projects, instants, ignore rules, content deltas, the file fold."""

from __future__ import annotations

import bisect
import difflib
import hashlib
import json
import posixpath
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pathspec

from lighthouse.errors import ValidationFailed
from lighthouse.events.model import StoredEvent
from lighthouse.history.models import FileChange, FileMoved, FileState, FileVersion

PROJECT = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$")
MAX_DEPTH = 64
# Versions per partition of a file's version index: "the file at T" is one Query in one bucket of at
# most this many rows, found from the bucket start instants kept in the file's tree entry.
INDEX_BUCKET = 256
# Never uploaded, whatever .gitignore says: their changes are recorded as metadata only.
SECRET_PATTERNS = (
    ".env", ".env.*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "id_*",
    ".netrc", ".npmrc", ".pypirc", ".git-credentials", "credentials", "credentials.*", "*.kdbx",
    "secrets.*", ".aws/", ".ssh/", ".gnupg/", ".git/",
)  # fmt: skip


# ---- projects and paths --------------------------------------------------------------------------


def project_of(cwd: str, override: str | None) -> str:
    """`?project=NAME`, else the base name of the hook's `cwd`."""
    name = override if override else posixpath.basename(cwd.rstrip("/")) or ""
    if not PROJECT.match(name):
        raise ValidationFailed(
            f"project {name!r} is not a valid project name (a letter, then letters, digits, '_', '.', '-'; "
            "at most 64): pass ?project=NAME",
            {"project": name[:80]},
        )
    return name


def confine(path: str) -> str:
    """`path` as a clean project-relative path, or ValidationFailed when it could leave the root.

    Refuses what could escape or alias: absolute paths, `..` segments, NUL and control characters,
    backslashes (a separator elsewhere), percent-encoded separators and dots (a view path reaches
    here already decoded once), and names that Unicode normalisation would change.
    """
    if not path or len(path) > 1024:
        raise ValidationFailed("a path must have 1 to 1024 characters", {"path": path[:80]})
    problem = _path_problem(path)
    if problem:
        raise ValidationFailed(f"path {path[:200]!r} {problem}", {"path": path[:200]})
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if not parts:
        raise ValidationFailed("the path names the project root, not a file", {"path": path})
    if len(parts) > MAX_DEPTH:
        raise ValidationFailed(f"a path may have at most {MAX_DEPTH} segments", {"path": path[:200]})
    return "/".join(parts)


def _path_problem(path: str) -> str | None:
    if path.startswith("/"):
        return "is absolute: paths are relative to the project root"
    if any(ord(char) < 32 or ord(char) == 127 for char in path):
        return "contains a control character"
    if "\\" in path:
        return "contains a backslash"
    if re.search(r"%(2[eEfF]|5[cC]|00)", path):
        return "contains a percent-encoded '.', '/', '\\' or NUL"
    if unicodedata.normalize("NFC", path) != path:
        return "is not in Unicode normal form C"
    if any(part == ".." for part in path.split("/")):
        return "contains '..'"
    return None


def relative_to(file_path: str, cwd: str) -> str:
    """A tool's `file_path` (absolute, or relative to `cwd`) as a path inside the project root."""
    root = posixpath.normpath(cwd)
    joined = posixpath.normpath(file_path if file_path.startswith("/") else posixpath.join(root, file_path))
    if joined != root and not joined.startswith(root.rstrip("/") + "/"):
        raise ValidationFailed(f"{file_path[:200]!r} is outside the project root {cwd[:200]!r}", {"path": file_path})
    return confine(joined[len(root) :].lstrip("/"))


def bucket_of(version: int) -> int:
    return (version - 1) // INDEX_BUCKET


def bucket_at(starts: Sequence[float], instant: float) -> int | None:
    """The index bucket holding the version in force at `instant` (None: before the first version)."""
    found = bisect.bisect_right(starts, instant) - 1
    return found if found >= 0 else None


def path_key(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()[:32]


def file_stream(project: str, path: str) -> str:
    return f"file#{project}#{path_key(path)}"


# ---- instants --------------------------------------------------------------------------------------


def parse_instant(text: str) -> float:
    """ISO-8601 (a zone, or UTC when it has none) or Unix seconds."""
    raw = text.strip()
    if re.fullmatch(r"\d{1,12}(\.\d{1,9})?", raw):
        return float(raw)
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(
            f"{text[:60]!r} is not an instant: ISO-8601 (e.g. 2026-11-30T12:00:00Z) or Unix seconds",
            {"instant": text[:60]},
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def iso(at: float) -> str:
    """An instant as the mount names it: ISO-8601 UTC with microseconds, so it parses back exactly."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---- ignore rules ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IgnoreRules:
    """The project's .gitignore patterns plus the secret patterns that are never uploaded."""

    spec: pathspec.PathSpec[Any]
    secrets: pathspec.PathSpec[Any]

    @classmethod
    def of(cls, gitignore: str = "") -> IgnoreRules:
        return cls(
            pathspec.PathSpec.from_lines("gitwildmatch", gitignore.splitlines()),
            pathspec.PathSpec.from_lines("gitwildmatch", SECRET_PATTERNS),
        )

    def reason(self, path: str) -> str | None:
        """Why `path`'s content must not be uploaded, or None."""
        if self.secrets.match_file(path):
            return "matches a secrets pattern: content never uploaded"
        if self.spec.match_file(path):
            return "ignored by .gitignore: content never uploaded"
        return None


# ---- content -------------------------------------------------------------------------------------


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def lines_of(content: bytes) -> list[bytes]:
    return content.splitlines(keepends=True)


def line_changes(before: bytes | None, after: bytes | None) -> tuple[int, int]:
    """(lines added, lines removed) from `before` to `after`."""
    old, new = lines_of(before or b""), lines_of(after or b"")
    added = removed = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            removed += i2 - i1
        if tag in ("replace", "insert"):
            added += j2 - j1
    return added, removed


def delta(base: bytes, target: bytes) -> bytes:
    """`target` as line operations on `base` (JSON): ["=", n] keeps, ["-", n] drops, ["+", lines] adds.

    Lines travel as latin-1 text, which maps every byte to one code point, so any content (UTF-8 or
    not) survives the round trip. difflib does the matching; only the encoding is ours.
    """
    old, new = lines_of(base), lines_of(target)
    ops: list[list[Any]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            ops.append(["=", i2 - i1])
            continue
        if i2 > i1:
            ops.append(["-", i2 - i1])
        if j2 > j1:
            ops.append(["+", [line.decode("latin-1") for line in new[j1:j2]]])
    return json.dumps(ops, separators=(",", ":")).encode()


def apply_delta(base: bytes, encoded: bytes) -> bytes:
    old = lines_of(base)
    out: list[bytes] = []
    position = 0
    for op, value in json.loads(encoded):
        if op == "=":
            out.extend(old[position : position + value])
            position += value
        elif op == "-":
            position += value
        else:
            out.extend(line.encode("latin-1") for line in value)
    return b"".join(out)


def needs_snapshot(state: FileState, delta_size: int, size: int, every: int) -> bool:
    """A full copy when the stream has none yet, every `every` versions, or when the delta is no
    smaller than half the file (then it saves nothing worth a second read)."""
    return state.base is None or state.since_snapshot + 1 >= every or delta_size * 2 >= max(size, 1)


def unified_diff(path: str, before: bytes | None, after: bytes | None, labels: tuple[str, str]) -> str:
    old = (before or b"").decode("utf-8", "replace").splitlines(keepends=True)
    new = (after or b"").decode("utf-8", "replace").splitlines(keepends=True)
    return "".join(difflib.unified_diff(old, new, f"a/{path}\t{labels[0]}", f"b/{path}\t{labels[1]}", lineterm="\n"))


# ---- the file fold -----------------------------------------------------------------------------------


class FileFold:
    name = "file-v1"
    snapshots = False  # reads go through the version index, not a fold of the whole stream

    def initial(self) -> FileState:
        return FileState()

    def evolve(self, state: FileState, stored: StoredEvent) -> FileState:
        event = stored.event
        if not isinstance(event, FileChange):
            return state
        common = {
            "version": stored.version, "agent": event.agent, "source": event.source, "changed_at": event.at,
            "bucket_starts": _bucket_starts(state.bucket_starts, stored.version, event.at),
            "first_at": state.first_at or event.at, "path": state.path or event.path,
            "modifications": state.modifications + (event.TYPE == "FILE_MODIFIED"),
            "total_added": state.total_added + event.added, "total_removed": state.total_removed + event.removed,
            "contributors": _contributed(state.contributors, event),
        }  # fmt: skip
        if event.TYPE == "FILE_DELETED" or (isinstance(event, FileMoved) and event.direction == "out"):
            gone = {"exists": False, "sha256": None, "size": 0, "lines": 0, "stored": False, "note": event.note}
            return state.model_copy(update={**common, **gone})
        kept = {"exists": True, "sha256": event.sha256, "size": event.size, "lines": event.lines, "note": event.note}
        if event.stored:  # a full copy starts a new run of deltas; a delta extends the current one
            kept |= {"stored": True, "base": event.base or event.sha256}
            kept["since_snapshot"] = 0 if event.base is None else state.since_snapshot + 1
        else:
            kept["stored"] = False
        return state.model_copy(update={**common, **kept})

    def to_snapshot(self, state: FileState) -> dict[str, Any]:
        return state.model_dump()

    def from_snapshot(self, data: dict[str, Any]) -> FileState:
        return FileState.model_validate(data)


FILE_FOLD = FileFold()


MAX_CONTRIBUTORS = 200


def _bucket_starts(starts: list[float], version: int, at: float) -> list[float]:
    """The first version of each index bucket adds its instant."""
    if (version - 1) % INDEX_BUCKET == 0 and len(starts) <= (version - 1) // INDEX_BUCKET:
        return [*starts, at]
    return starts


def _contributed(contributors: dict[str, dict[str, float]], event: FileChange) -> dict[str, dict[str, float]]:
    """Per-agent totals; past MAX_CONTRIBUTORS agents, newcomers are counted as "(others)"."""
    name = event.agent if event.agent in contributors or len(contributors) < MAX_CONTRIBUTORS else "(others)"
    mine = contributors.get(name, {"changes": 0, "added": 0, "removed": 0, "first_at": event.at, "last_at": event.at})
    updated = {
        "changes": mine["changes"] + 1,
        "added": mine["added"] + event.added,
        "removed": mine["removed"] + event.removed,
        "first_at": mine["first_at"],
        "last_at": event.at,
    }
    return {**contributors, name: updated}


def fold_events(events: Iterable[StoredEvent]) -> FileState:
    """A stream's events in any order of arrival, folded in version order (never by wall clock)."""
    state = FILE_FOLD.initial()
    for stored in sorted(events, key=lambda e: e.version):
        state = FILE_FOLD.evolve(state, stored)
    return state


def at_instant(events: Sequence[StoredEvent], instant: float) -> FileState:
    """The file at `instant`: the events whose (monotone) instant is not after it, in version order."""
    return fold_events(e for e in events if isinstance(e.event, FileChange) and e.event.at <= instant)


def version_row(stored: StoredEvent, after: FileState) -> FileVersion:
    """The version's index row; `after` is the file once this event is folded in (for the totals)."""
    event = stored.event
    if not isinstance(event, FileChange):
        raise TypeError(f"{event.TYPE} is not a file event")
    moved = event if isinstance(event, FileMoved) else None
    return FileVersion(
        version=stored.version, type=event.TYPE, at=event.at, at_iso=iso(event.at), agent=event.agent,
        source=event.source, sha256=event.sha256, size=event.size, lines=event.lines, added=event.added,
        removed=event.removed, stored=event.stored, note=event.note,
        from_path=moved.from_path if moved else None, to_path=moved.to_path if moved else None,
        exists=after.exists, modifications=after.modifications, total_added=after.total_added,
        total_removed=after.total_removed, contributors=sorted(after.contributors), first_at=after.first_at,
    )  # fmt: skip
