"""What a PostToolUse hook input changed: the files and their new contents, from the tool's input.

The command hook reads the files on the agent's machine and sends them (`lighthouse_files`); the
http hook cannot, so the new content is replayed from the tool's input: Write carries it whole,
Edit and MultiEdit are string replacements on the content before (Claude Code's `originalFile`, or
the history's latest), NotebookEdit a cell edit on the notebook's JSON. What cannot be replayed is
recorded as metadata, with the reason.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from lighthouse.errors import ValidationFailed
from lighthouse.history.models import CapturedFile, PostToolUseInput

Change = Literal["created", "modified", "deleted", "moved"]
FILE_TOOLS = ("Write", "Edit", "MultiEdit", "NotebookEdit")


@dataclass(frozen=True)
class Observed:
    """One file change as the hook saw it; `content` None means metadata only (`note` says why)."""

    path: str  # as given: absolute or relative to cwd
    change: Change
    content: bytes | None
    note: str = ""
    from_path: str | None = None
    size: int = 0


class NotReplayable(Exception):
    pass


def observed(payload: PostToolUseInput, content_before: Callable[[str], bytes | None]) -> tuple[list[Observed], str]:
    """(the changes, why there are none). `content_before(path)` is the history's latest content."""
    if payload.lighthouse_files is not None:
        return [_from_captured(file) for file in payload.lighthouse_files], ""
    tool, args = payload.tool_name, payload.tool_input
    if tool == "Bash":
        return [], "Bash changes are captured by the command hook, which reads the files on the agent's machine"
    if tool not in FILE_TOOLS:
        return [], f"{tool} does not change files"
    path = args.get("notebook_path") if tool == "NotebookEdit" else args.get("file_path")
    if not isinstance(path, str) or not path:
        raise ValidationFailed(f"{tool}'s tool_input has no file path", {"tool_name": tool})
    if tool == "Write":
        content = args.get("content")
        if not isinstance(content, str):
            raise ValidationFailed("Write's tool_input.content must be a string")
        return [Observed(path, "modified", content.encode())], ""  # the service tells created from modified
    return [_edited(tool, args, path, payload.tool_response, content_before)], ""


def _edited(
    tool: str, args: dict[str, Any], path: str, response: Any, content_before: Callable[[str], bytes | None]
) -> Observed:
    before = _original(response) if tool != "NotebookEdit" else None
    if before is None:
        before = content_before(path)
    if before is None:
        note = f"{tool} edited a file whose content before is unknown: its new content cannot be replayed"
        return Observed(path, "modified", None, note)
    try:
        return Observed(path, "modified", _replay(tool, args, before))
    except NotReplayable as error:
        return Observed(path, "modified", None, f"{tool} could not be replayed: {error}")


def _from_captured(file: CapturedFile) -> Observed:
    if file.content_b64 is None:
        return Observed(file.path, file.change, None, file.note or "content not sent", file.from_path, file.size)
    try:
        content = base64.b64decode(file.content_b64, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValidationFailed(f"lighthouse_files: {file.path[:200]!r} content_b64 is not base64: {error}") from None
    if file.sha256 is not None and hashlib.sha256(content).hexdigest() != file.sha256:
        raise ValidationFailed(f"lighthouse_files: {file.path[:200]!r} does not match its sha256")
    return Observed(file.path, file.change, content, "", file.from_path, len(content))


def _original(response: Any) -> bytes | None:
    if isinstance(response, dict) and isinstance(response.get("originalFile"), str):
        return str(response["originalFile"]).encode()
    return None


def _replay(tool: str, args: dict[str, Any], before: bytes) -> bytes:
    if tool == "NotebookEdit":
        return _notebook_edit(args, before)
    edits = args.get("edits") if tool == "MultiEdit" else [args]
    if not isinstance(edits, list) or not edits:
        raise NotReplayable("no edits")
    text = before.decode("utf-8", "surrogateescape")
    for edit in edits:
        text = _apply_edit(text, edit)
    return text.encode("utf-8", "surrogateescape")


def _apply_edit(text: str, edit: Any) -> str:
    """One Edit as Claude Code applies it: old_string -> new_string, once or everywhere."""
    if not isinstance(edit, dict):
        raise NotReplayable("an edit is not an object")
    old, new = edit.get("old_string"), edit.get("new_string")
    if not isinstance(old, str) or not isinstance(new, str):
        raise NotReplayable("old_string and new_string must be strings")
    if old == "":
        if text:
            raise NotReplayable("an empty old_string only creates an empty file")
        return new
    if old not in text:
        raise NotReplayable("old_string is not in the content before")
    return text.replace(old, new) if edit.get("replace_all") else text.replace(old, new, 1)


def _notebook_edit(args: dict[str, Any], before: bytes) -> bytes:
    """NotebookEdit on the notebook's JSON: replace a cell's source, insert a cell after one, delete one."""
    notebook, cells = _cells(before)
    mode = args.get("edit_mode") or "replace"
    index = _cell_index(cells, args.get("cell_id"))
    if mode == "insert":
        cells.insert(0 if index is None else index + 1, _new_cell(args))
    elif index is None:
        raise NotReplayable(f"{mode} needs a cell_id")
    elif mode == "delete":
        del cells[index]
    else:
        cells[index]["source"] = str(args.get("new_source") or "")
        cells[index]["cell_type"] = args.get("cell_type") or cells[index].get("cell_type", "code")
    return (json.dumps(notebook, indent=1, ensure_ascii=False) + "\n").encode()


def _cells(before: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        notebook = json.loads(before)
        cells: list[dict[str, Any]] = notebook["cells"]
    except (ValueError, KeyError, TypeError) as error:
        raise NotReplayable(f"the notebook before is not a notebook: {error}") from None
    return notebook, cells


def _cell_index(cells: list[dict[str, Any]], cell_id: Any) -> int | None:
    if not cell_id:
        return None
    index = next((i for i, cell in enumerate(cells) if cell.get("id") == cell_id), None)
    if index is None:
        raise NotReplayable(f"no cell {cell_id!r}")
    return index


def _new_cell(args: dict[str, Any]) -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": args.get("cell_type") or "code", "metadata": {},
                            "source": str(args.get("new_source") or "")}  # fmt: skip
    if cell["cell_type"] == "code":
        cell |= {"outputs": [], "execution_count": None}
    return cell
