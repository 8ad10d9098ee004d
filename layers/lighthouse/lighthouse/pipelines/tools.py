"""Tool stages: the project's workspace (an S3 prefix), the built-in tools and custom ones.

Paths are normalised and confined to the tool's root inside the workspace (`..` cannot leave it);
`command.run` starts an allowlisted executable (no shell) in a temporary directory holding a copy of
the workspace, with a time and an output cap, then syncs the changes back — refusing the whole call
if the command left a symlink that points outside its directory.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import posixpath
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from lighthouse import jsonschemas
from lighthouse.pipelines.errors import ConfigStageError, SecurityStageError, ToolStageError
from lighthouse.pipelines.manifests import Tool

MAX_READ_BYTES = 1024 * 1024
MAX_WORKSPACE_BYTES = 64 * 1024 * 1024
BUILTIN_SCHEMAS: dict[str, dict[str, Any]] = {
    "filesystem.read_file": {
        "type": "object",
        "required": ["path"],
        "properties": {"path": {"type": "string", "minLength": 1}},
        "additionalProperties": False,
    },
    "filesystem.write_file": {
        "type": "object",
        "required": ["path", "content"],
        "properties": {"path": {"type": "string", "minLength": 1}, "content": {"type": "string"}},
        "additionalProperties": False,
    },
    "filesystem.list": {
        "type": "object",
        "properties": {"path": {"type": "string"}},
        "additionalProperties": False,
    },
    "command.run": {
        "type": "object",
        "required": ["command"],
        "properties": {
            "command": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "stdin": {"type": "string"},
        },
        "additionalProperties": False,
    },
}
PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["tool_name", "arguments"],
    "properties": {
        "tool_name": {"type": "string", "minLength": 1},
        "arguments": {"type": "object"},
        "result_field": {"type": "string", "minLength": 1},
    },
    "additionalProperties": False,
}
PLAN_KEYS = frozenset(PLAN_SCHEMA["properties"])


@dataclass
class ToolOutcome:
    result: Any
    mutations: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False


class Workspace:
    """Files of one project under `s3://bucket/workspaces/<project>/`."""

    def __init__(self, s3: Any, bucket: str, project: str) -> None:
        self._s3 = s3
        self._bucket = bucket
        self.prefix = f"workspaces/{project}/"

    @staticmethod
    def confine(root: str, path: str) -> str:
        """The workspace-relative path of `path` inside `root`; SecurityStageError if it would leave."""
        if "\x00" in path or path.startswith("/") or path.startswith("~"):
            raise SecurityStageError(f"path {path!r} must be relative to the workspace")
        base = posixpath.normpath(root)
        joined = posixpath.normpath(posixpath.join(base, path))
        if (
            joined == ".."
            or joined.startswith("../")
            or (base != "." and joined != base and not joined.startswith(base + "/"))
        ):
            raise SecurityStageError(f"path {path!r} leaves the tool's root {root!r}")
        return "" if joined == "." else joined

    def read(self, relative: str) -> str:
        return self.read_bytes(relative).decode("utf-8", errors="replace")

    def read_bytes(self, relative: str) -> bytes:
        try:
            body: bytes = self._s3.get_object(Bucket=self._bucket, Key=self.prefix + relative)["Body"].read(
                MAX_READ_BYTES + 1
            )
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                raise ToolStageError(f"no file {relative!r} in the workspace") from error
            raise
        if len(body) > MAX_READ_BYTES:
            raise ToolStageError(f"{relative!r} is larger than {MAX_READ_BYTES} bytes")
        return body

    def write(self, relative: str, content: bytes) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=self.prefix + relative, Body=content)

    def delete(self, relative: str) -> None:
        self._s3.delete_object(Bucket=self._bucket, Key=self.prefix + relative)

    def files(self, under: str = "") -> dict[str, str]:
        """Workspace-relative path -> ETag, for every file under `under`."""
        found: dict[str, str] = {}
        paginator = self._s3.get_paginator("list_objects_v2")
        start = self.prefix + (under.rstrip("/") + "/" if under else "")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=start):
            for item in page.get("Contents", []):
                found[item["Key"][len(self.prefix) :]] = item["ETag"]
        return found


MUTATING_KINDS = frozenset({"filesystem.write_file", "command.run", "custom"})
FILESYSTEM_KINDS = frozenset({"filesystem.read_file", "filesystem.list", "filesystem.write_file"})


@dataclass
class ToolRunner:
    workspace: Workspace
    plugins_veto: Callable[[dict[str, Any]], str | None] = lambda call: None

    def run(self, tool: Tool, arguments: dict[str, Any], *, analysis_only: bool, dry_run: bool) -> ToolOutcome:
        kind = tool.builtin or tool.id if tool.kind == "builtin" else "custom"
        self._check_arguments(tool, kind, arguments)
        mutates = tool.mutates if tool.mutates is not None else kind in MUTATING_KINDS
        self._check_allowed(tool, arguments, mutates, analysis_only)
        if kind in FILESYSTEM_KINDS:
            return self._filesystem(kind, tool, arguments, dry_run)
        if kind == "command.run":
            return self._command(tool, arguments, dry_run)
        if dry_run and mutates:
            return ToolOutcome({"dry_run": True, "not_run": tool.id}, [], True)
        return ToolOutcome(self._custom(tool, arguments))

    @staticmethod
    def _check_arguments(tool: Tool, kind: str, arguments: dict[str, Any]) -> None:
        schema = BUILTIN_SCHEMAS.get(kind) if tool.kind == "builtin" else tool.input_schema
        if schema is None:
            raise ConfigStageError(f"tool {tool.id!r} has no argument schema")
        problems = [f"{v['path']}: {v['message']}" for v in jsonschemas.errors_of(schema, arguments, "input_schema")]
        if problems:
            raise ConfigStageError(f"arguments for {tool.id!r} do not match its schema: {'; '.join(problems)}")

    def _check_allowed(self, tool: Tool, arguments: dict[str, Any], mutates: bool, analysis_only: bool) -> None:
        if analysis_only and mutates:
            raise SecurityStageError(f"analysis_only: {tool.id!r} may change the workspace and is blocked")
        veto = self.plugins_veto({"tool": tool.id, "arguments": dict(arguments), "mutates": mutates})
        if veto:
            raise SecurityStageError(f"a plugin vetoed {tool.id!r}: {veto}")

    def _filesystem(self, kind: str, tool: Tool, arguments: dict[str, Any], dry_run: bool) -> ToolOutcome:
        if kind == "filesystem.read_file":
            return ToolOutcome(self.workspace.read(Workspace.confine(tool.filesystem_root, arguments["path"])))
        if kind == "filesystem.list":
            relative = Workspace.confine(tool.filesystem_root, arguments.get("path") or ".")
            return ToolOutcome(sorted(self.workspace.files(relative)))
        relative = Workspace.confine(tool.filesystem_root, arguments["path"])  # filesystem.write_file
        change = {"path": relative, "change": "written", "bytes": len(arguments["content"].encode())}
        if not dry_run:
            self.workspace.write(relative, arguments["content"].encode())
        return ToolOutcome({"written": relative}, [change], dry_run)

    def _custom(self, tool: Tool, arguments: dict[str, Any]) -> Any:
        module, _, name = (tool.handler or "").partition(":")
        try:
            handler = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as error:
            raise ConfigStageError(f"tool {tool.id!r}: cannot load {tool.handler!r}: {error}") from error
        try:
            return handler(dict(arguments))
        except Exception as error:
            raise ToolStageError(f"tool {tool.id!r} failed: {type(error).__name__}: {error}") from error

    def _command(self, tool: Tool, arguments: dict[str, Any], dry_run: bool) -> ToolOutcome:
        argv: list[str] = arguments["command"]
        if "/" in argv[0] or argv[0] not in tool.allowlist:
            raise SecurityStageError(
                f"{argv[0]!r} is not on {tool.id!r}'s allowlist ({', '.join(tool.allowlist) or 'empty'})"
            )
        root = Workspace.confine(".", tool.filesystem_root)
        with tempfile.TemporaryDirectory(prefix="lighthouse-tool-") as scratch:
            base = Path(scratch)
            before = self._download(base)
            workdir = base / root if root else base
            workdir.mkdir(parents=True, exist_ok=True)
            result = _run_command(tool, argv, workdir, arguments.get("stdin", ""), scratch)
            changes = self._changes(base, before)
            if not dry_run:
                self._upload(base, changes)
            return ToolOutcome(result, changes, dry_run)

    def _upload(self, base: Path, changes: list[dict[str, Any]]) -> None:
        for change in changes:
            if change["change"] == "deleted":
                self.workspace.delete(change["path"])
            else:
                self.workspace.write(change["path"], (base / change["path"]).read_bytes())

    def _download(self, base: Path) -> dict[str, str]:
        digests: dict[str, str] = {}
        total = 0
        for relative in self.workspace.files():
            content = self.workspace.read_bytes(relative)
            total += len(content)
            if total > MAX_WORKSPACE_BYTES:
                raise ToolStageError(f"the workspace is larger than {MAX_WORKSPACE_BYTES} bytes")
            target = base / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            digests[relative] = hashlib.sha256(content).hexdigest()
        return digests

    @staticmethod
    def _changes(base: Path, before: dict[str, str]) -> list[dict[str, Any]]:
        after = _digests(base)
        changes = [{"path": p, "change": "added"} for p in after if p not in before]
        changes += [{"path": p, "change": "modified"} for p in after if p in before and after[p] != before[p]]
        changes += [{"path": p, "change": "deleted"} for p in before if p not in after]
        return changes


def _run_command(tool: Tool, argv: list[str], workdir: Path, stdin: str, home: str) -> dict[str, Any]:
    """Run the command with no shell and a bare environment; its result, or ToolStageError."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LANG": "C.UTF-8"}
    try:
        completed = subprocess.run(  # noqa: S603 - no shell; argv[0] is on the tool's allowlist
            argv,
            cwd=workdir,
            env=env,
            input=stdin.encode(),
            capture_output=True,
            timeout=tool.timeout_seconds,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise ToolStageError(f"{argv[0]} did not finish within {tool.timeout_seconds} s") from error
    except OSError as error:
        raise ToolStageError(f"{argv[0]} could not start: {error}") from error
    cap = tool.max_output_bytes
    result = {
        "exit_code": completed.returncode,
        "stdout": completed.stdout[:cap].decode("utf-8", errors="replace"),
        "stderr": completed.stderr[:cap].decode("utf-8", errors="replace"),
        "truncated": len(completed.stdout) > cap or len(completed.stderr) > cap,
    }
    if completed.returncode != 0:
        raise ToolStageError(f"{argv[0]} exited with {completed.returncode}", {"result": result})
    return result


def _digests(base: Path) -> dict[str, str]:
    """The digest of every file the command left; a symlink out of the workspace is refused."""
    real_base = os.path.realpath(base)
    digests: dict[str, str] = {}
    for path in sorted(base.rglob("*")):
        relative = path.relative_to(base).as_posix()
        if path.is_symlink():
            target = os.path.realpath(path)
            if not (target == real_base or target.startswith(real_base + os.sep)):
                raise SecurityStageError(f"the command left {relative!r}, a symlink out of the workspace ({target})")
            continue  # links inside the workspace are not files of their own
        if path.is_file():
            digests[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests
