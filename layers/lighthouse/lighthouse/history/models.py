"""History: the file events agents' changes are recorded as, the capture input, and the views' shapes."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from lighthouse.events.types import Event

SHA256 = r"^[0-9a-f]{64}$"
# Paths are stored relative to the project root, '/'-separated, already confined (see logic.confine).
MAX_PATH = 1024


class FileChange(Event):
    """What every file event carries. `sha256` is the content's digest (None when the content is not
    known: a deleted file, an ignored one, or one over the size limit); `stored` says whether that
    content is in the blob store; `base` names the snapshot a stored delta applies to."""

    path: str = Field(max_length=MAX_PATH)
    agent: str = Field(max_length=128)
    source: str = Field(max_length=200, description="the tool or stage that made the change")
    at: float = Field(description="the change's instant: never before the stream's previous one")
    sha256: str | None = Field(default=None, pattern=SHA256)
    size: int = Field(default=0, ge=0)
    lines: int = Field(default=0, ge=0)
    added: int = Field(default=0, ge=0)
    removed: int = Field(default=0, ge=0)
    stored: bool = False
    base: str | None = Field(default=None, pattern=SHA256)
    note: str = Field(default="", max_length=300, description="why the content is not stored, if it is not")


class FileCreated(FileChange):
    TYPE: ClassVar[str] = "FILE_CREATED"


class FileModified(FileChange):
    TYPE: ClassVar[str] = "FILE_MODIFIED"


class FileMoved(FileChange):
    """Written in both streams: `out` in the old path's (the file is gone from there), `in` in the
    new path's (the file is there, with its content)."""

    TYPE: ClassVar[str] = "FILE_MOVED"

    from_path: str = Field(max_length=MAX_PATH)
    to_path: str = Field(max_length=MAX_PATH)
    direction: Literal["out", "in"]


class FileDeleted(FileChange):
    TYPE: ClassVar[str] = "FILE_DELETED"


class FileState(BaseModel):
    """A file stream folded: the file at one version."""

    model_config = ConfigDict(frozen=True)

    project: str = ""
    path: str = ""
    exists: bool = False
    version: int = 0
    sha256: str | None = None
    size: int = 0
    lines: int = 0
    stored: bool = False
    base: str | None = None
    note: str = ""
    agent: str = ""
    source: str = ""
    changed_at: float = 0.0
    first_at: float = 0.0
    since_snapshot: int = 0
    modifications: int = 0
    total_added: int = 0
    total_removed: int = 0
    # agent -> {"changes", "added", "removed", "first_at", "last_at"}
    contributors: dict[str, dict[str, float]] = Field(default_factory=dict)
    # The instant of the first version of each bucket of the version index (logic.INDEX_BUCKET versions each).
    bucket_starts: list[float] = Field(default_factory=list)


# ---- capture input ------------------------------------------------------------------------------


class CapturedFile(BaseModel):
    """One file the command hook read on the agent's machine after the tool ran."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=4096, description="absolute, or relative to cwd")
    change: Literal["created", "modified", "deleted", "moved"]
    from_path: str | None = Field(default=None, max_length=4096, description="moves: where it was")
    content_b64: str | None = Field(default=None, max_length=4 * 1024 * 1024, description="absent: metadata only")
    sha256: str | None = Field(default=None, pattern=SHA256)
    size: int = Field(default=0, ge=0)
    note: str = Field(default="", max_length=300, description="why the content is not sent")


class PostToolUseInput(BaseModel):
    """Claude Code's PostToolUse hook input; `lighthouse_files` is what the command hook adds."""

    model_config = ConfigDict(extra="allow")

    session_id: str = Field(default="", max_length=200)
    cwd: str = Field(min_length=1, max_length=4096)
    hook_event_name: Literal["PostToolUse"]
    tool_name: str = Field(min_length=1, max_length=200)
    tool_input: dict[str, Any] = Field(default_factory=dict)
    tool_response: Any = None
    tool_use_id: str = Field(default="", max_length=200)
    lighthouse_files: list[CapturedFile] | None = Field(default=None, max_length=1000)


class RecordedChange(BaseModel):
    path: str
    type: str
    version: int
    sha256: str | None
    stored: bool
    note: str = ""


class CaptureResult(BaseModel):
    """What the hook answers: Claude Code reads nothing from a PostToolUse reply but `suppressOutput`."""

    project: str
    recorded: list[RecordedChange]
    skipped: list[str] = Field(default_factory=list, description="why some inputs recorded nothing")
    suppressOutput: bool = True


# ---- history views --------------------------------------------------------------------------------


class FileVersion(BaseModel):
    version: int
    type: str
    at: float
    at_iso: str
    agent: str
    source: str
    sha256: str | None
    size: int
    lines: int
    added: int
    removed: int
    stored: bool
    note: str = ""
    from_path: str | None = None
    to_path: str | None = None
    exists: bool = True
    # Cumulative up to this version: what a past instant's header says without folding the stream.
    modifications: int = 0
    total_added: int = 0
    total_removed: int = 0
    contributors: list[str] = Field(default_factory=list)
    first_at: float = 0.0


class FileVersions(BaseModel):
    project: str
    path: str
    versions: list[FileVersion]
    next_token: str | None = None


class FileAt(BaseModel):
    project: str
    path: str
    at: float
    version: int
    exists: bool
    sha256: str | None
    size: int
    stored: bool
    note: str = ""
    content: str | None = Field(default=None, description="UTF-8 text, or None (binary: see content_b64)")
    content_b64: str | None = None


class FileDiff(BaseModel):
    project: str
    path: str
    from_instant: float
    to_instant: float
    from_version: int
    to_version: int
    added: int
    removed: int
    diff: str


class Contributor(BaseModel):
    agent: str
    changes: int
    added: int
    removed: int
    first_at: float
    last_at: float


class FileStats(BaseModel):
    project: str
    path: str
    versions: int
    contributors: list[Contributor]
    added: int
    removed: int
    first_at: float | None
    last_at: float | None


class TreeEntry(BaseModel):
    path: str
    exists: bool
    size: int
    sha256: str | None
    version: int
    changed_at: float
    agent: str
    stored: bool


class FileTree(BaseModel):
    project: str
    at: float | None = None
    files: list[TreeEntry]


class StreamAt(BaseModel):
    stream_id: str
    at: float
    version: int
    state: dict[str, Any]
