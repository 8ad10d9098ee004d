"""`lighthouse hook claude-code --event post-tool-use`: Claude Code's PostToolUse command hook.

It runs on the agent's machine, so it sends what the tool really left on disk: for Write, Edit,
MultiEdit and NotebookEdit the file's new full content; for Bash the files the command changed in
the project (`git status --porcelain` in a git repository, else files modified since the last
capture, a bounded mtime scan), up to --max-files files of --max-bytes each. Files that .gitignore
or the secrets patterns match are sent as metadata only: their content never leaves the machine.
PostToolUse cannot undo the call, so a failure is reported on stderr (exit 1) and never blocks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from lighthouse import strictjson
from lighthouse.errors import MalformedRequest
from lighthouse.history.logic import IgnoreRules

HOOK_PATH = "/hooks/claude-code/post-tool-use"
MAX_INPUT_BYTES = 4 * 1024 * 1024
FILE_TOOLS = ("Write", "Edit", "MultiEdit", "NotebookEdit")
SCAN_STATE = Path(os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))) / "lighthouse" / "mtime-scans.json"
SKIPPED_DIRS = {".git", "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", ".ruff_cache", "dist", "build"}


@dataclass(frozen=True)
class Limits:
    max_files: int = 50
    max_bytes: int = 1024 * 1024
    scan_entries: int = 20_000


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stderr: str


def run(stdin: str, api_url: str, token: str, project: str | None, limits: Limits, timeout: float = 30.0) -> Outcome:
    try:
        payload = strictjson.loads_object(stdin, max_bytes=MAX_INPUT_BYTES, where="the hook input")
    except MalformedRequest as error:
        return Outcome(1, f"Lighthouse history: {error.message}")
    cwd = Path(str(payload.get("cwd") or "."))
    try:
        payload["lighthouse_files"] = changed_files(payload, cwd, limits)
    except (OSError, ValueError) as error:
        return Outcome(1, f"Lighthouse history: could not read the changed files: {error}")
    url = f"{api_url.rstrip('/')}{HOOK_PATH}" + (f"?project={quote(project)}" if project else "")
    try:
        response = requests.post(
            url,
            data=json.dumps(payload),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=timeout,
        )
    except requests.RequestException as error:
        return Outcome(1, f"Lighthouse history: unreachable ({type(error).__name__}: {error}); change not recorded")
    if response.status_code != 200:
        return Outcome(1, f"Lighthouse history: HTTP {response.status_code}: {response.text[:300]}")
    return Outcome(0, "")


def changed_files(payload: dict[str, Any], cwd: Path, limits: Limits) -> list[dict[str, Any]]:
    rules = IgnoreRules.of(_read_text(cwd / ".gitignore"))
    tool = payload.get("tool_name")
    arguments = payload.get("tool_input") or {}
    if tool in FILE_TOOLS:
        raw = arguments.get("notebook_path") if tool == "NotebookEdit" else arguments.get("file_path")
        if not isinstance(raw, str) or not raw:
            return []
        path = Path(raw) if Path(raw).is_absolute() else cwd / raw
        inside = not os.path.relpath(path, cwd).startswith("..")
        return [_describe(path, cwd, "modified", rules, limits)] if inside else []  # not the project's file
    if tool != "Bash":
        return []
    found = _git_changes(cwd) if (cwd / ".git").exists() else _mtime_changes(cwd, limits)
    return [
        _describe(cwd / path, cwd, change, rules, limits, origin) for path, change, origin in found[: limits.max_files]
    ]


def _describe(
    path: Path, cwd: Path, change: str, rules: IgnoreRules, limits: Limits, origin: str | None = None
) -> dict[str, Any]:
    relative = os.path.relpath(path, cwd)
    entry: dict[str, Any] = {"path": relative, "change": change}
    if origin:
        entry["from_path"] = origin
    if change == "deleted" or not path.exists():
        entry["change"] = "deleted"
        return entry
    reason = rules.reason(relative)
    size = path.stat().st_size
    if path.is_symlink() or not path.is_file():
        return entry | {"size": 0, "note": "not a regular file: content not sent"}
    if not path.resolve().is_relative_to(cwd.resolve()):
        return entry | {"size": size, "note": "reached through a link out of the project: content not sent"}
    if reason:
        return entry | {"size": size, "note": reason}
    if size > limits.max_bytes:
        return entry | {"size": size, "note": f"larger than {limits.max_bytes} bytes: content not sent"}
    content = path.read_bytes()
    return entry | {
        "content_b64": base64.b64encode(content).decode(),
        "sha256": hashlib.sha256(content).hexdigest(),
        "size": len(content),
    }


def _git_changes(cwd: Path) -> list[tuple[str, str, str | None]]:
    """(path, change, moved from) of every uncommitted change, from `git status --porcelain`."""
    completed = subprocess.run(
        ["git", "status", "--porcelain=v1", "-z", "-uall"],  # noqa: S607 - git from the agent's PATH
        cwd=cwd, capture_output=True, timeout=30, check=True,
    )  # fmt: skip
    fields = completed.stdout.decode("utf-8", "surrogateescape").split("\0")
    changes: list[tuple[str, str, str | None]] = []
    index = 0
    while index < len(fields) and fields[index]:
        status, path = fields[index][:2], fields[index][3:]
        index += 1
        if "R" in status:  # -z: the original path follows as its own field
            changes.append((path, "moved", fields[index]))
            index += 1
        elif "D" in status:
            changes.append((path, "deleted", None))
        elif status == "??" or "A" in status:
            changes.append((path, "created", None))
        else:
            changes.append((path, "modified", None))
    return changes


def _mtime_changes(cwd: Path, limits: Limits) -> list[tuple[str, str, str | None]]:
    """Files modified since this project's previous scan (or the last minute), newest first."""
    state = _scan_state()
    key = str(cwd.resolve())
    since = float(state.get(key, time.time() - 60))
    started = time.time()
    found: list[tuple[float, str]] = []
    seen = 0
    for root, directories, files in os.walk(cwd):
        directories[:] = [d for d in directories if d not in SKIPPED_DIRS]
        for name in files:
            seen += 1
            if seen > limits.scan_entries:
                break
            full = Path(root) / name
            try:
                modified = full.lstat().st_mtime
            except OSError:
                continue
            if modified >= since:
                found.append((modified, os.path.relpath(full, cwd)))
    state[key] = started
    _save_scan_state(state)
    return [(path, "modified", None) for _, path in sorted(found, reverse=True)]


def _scan_state() -> dict[str, float]:
    try:
        loaded = json.loads(SCAN_STATE.read_text())
        return {str(k): float(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_scan_state(state: dict[str, float]) -> None:
    SCAN_STATE.parent.mkdir(parents=True, exist_ok=True)
    SCAN_STATE.write_text(json.dumps(state))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
