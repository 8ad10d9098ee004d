"""The text views agents read with ordinary tools: current (annotated), history/<instant>, streams,
context/<agent> and shadow/<path>. Each is plain text (or JSON) rendered from the history service."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lighthouse.auth.tokens import Principal
from lighthouse.errors import Forbidden, NotFound
from lighthouse.history import logic
from lighthouse.history.annotate import COMMENT, Annotated, annotate, language_of
from lighthouse.history.models import FileState, FileVersion
from lighthouse.history.service import HistoryService

CACHE_ENTRIES = 256


@dataclass(frozen=True)
class ContextSources:
    """Where an agent's involvements are read (each returns plain documents, newest first)."""

    to_answer: Callable[[str], list[dict[str, Any]]]
    asked: Callable[[str], list[dict[str, Any]]]
    decisions: Callable[[str, int], list[dict[str, Any]]]
    tasks: Callable[[str], list[dict[str, Any]]]
    runs: Callable[[str], list[dict[str, Any]]]


@dataclass(frozen=True)
class TextView:
    text: str
    modified_at: float
    content_type: str = "text/plain; charset=utf-8"


class HistoryViews:
    def __init__(self, history: HistoryService, context: ContextSources) -> None:
        self._history = history
        self._context = context
        self._rendered: OrderedDict[tuple[str, str, str], str] = OrderedDict()
        self._lock = threading.Lock()

    # ---- current -------------------------------------------------------------------------------------

    def current(self, principal: Principal, project: str, path: str) -> TextView:
        state, content = self._history.current(principal, project, path)
        if not state.exists:
            raise NotFound(f"{state.path!r} was deleted at {logic.iso(state.changed_at)} by {state.agent}")
        key = (project, state.path, f"{state.version}:{state.sha256}")  # the header names the version
        with self._lock:
            cached = self._rendered.get(key)
        if cached is None:
            cached = render_current(state, content)
            with self._lock:
                self._rendered[key] = cached
                while len(self._rendered) > CACHE_ENTRIES:
                    self._rendered.popitem(last=False)
        return TextView(cached, state.changed_at)

    # ---- history ---------------------------------------------------------------------------------

    def history(self, principal: Principal, project: str, instant: float, path: str) -> TextView:
        self._history.require_member(principal, project)
        path = logic.confine(path)
        now = self._history.index.current(project, path)
        row, content = self._history.content_at(project, path, instant, now)
        if row is None or not row.exists:
            raise NotFound(f"{path!r} did not exist at {logic.iso(instant)}", {"path": path})
        return TextView(render_history(path, instant, row, now, content), row.at)

    def stream(self, principal: Principal, stream_id: str, instant: float) -> TextView:
        view = self._history.stream_at(principal, stream_id, instant)
        return TextView(json.dumps(view.model_dump(mode="json"), indent=2) + "\n", instant, "application/json")

    # ---- context and shadow ---------------------------------------------------------------------

    def context(self, principal: Principal, agent: str) -> TextView:
        if agent != principal.agent_id and principal.role != "admin":
            raise Forbidden("only admins may read another agent's context")
        sources = self._context
        document = {
            "agent": agent,
            "elicitations_to_answer": sources.to_answer(agent),
            "elicitations_asked": sources.asked(agent),
            "recent_gate_decisions": sources.decisions(agent, 20),
            "running_tasks": sources.tasks(agent),
            "running_runs": sources.runs(agent),
        }
        times = [float(d.get("created_at") or d.get("requested_at") or 0) for v in document.values()
                 if isinstance(v, list) for d in v]  # fmt: skip
        return TextView(json.dumps(document, indent=2) + "\n", max(times, default=0.0), "application/json")

    def shadow(self, principal: Principal, project: str, path: str, limit: int = 50) -> TextView:
        self._history.require_member(principal, project)
        path = logic.confine(path)
        entries = self._history.index.shadow(project, path, limit)
        lines = [f"# shadow: expert suggestions about {path} in {project}, newest first ({len(entries)})", ""]
        for entry in entries:
            lines.append(f"## {logic.iso(float(entry['at']))} {entry['expert']} on {entry['tool_name']} "
                         f"by {entry['agent']} (request {entry['request_id']})")  # fmt: skip
            if entry.get("command"):
                lines.append(f"command: {entry['command']}")
            if entry.get("reasoning"):
                lines.append(f"reasoning: {entry['reasoning']}")
            lines.extend(f"concern: {concern}" for concern in entry.get("concerns") or [])
            lines.extend(f"suggestion: {suggestion}" for suggestion in entry.get("suggestions") or [])
            lines.append("")
        modified = float(entries[0]["at"]) if entries else 0.0
        return TextView("\n".join(lines) + "\n", modified)


def _prefix(language: str | None) -> str:
    return COMMENT.get(language or "", "#") or "#"


def render_current(state: FileState, content: bytes | None) -> str:
    if content is None:
        header = [f"LIGHTHOUSE CURRENT VIEW: {state.path}", f"content not stored: {state.note}"]
        return "\n".join(f"# {line}" for line in header) + "\n"
    annotated = annotate(state.path, content)
    prefix = _prefix(annotated.language)
    header = _current_header(state, annotated)
    body = _inline(content.decode("utf-8", "replace"), annotated)
    return "\n".join(f"{prefix} {line}".rstrip() for line in header) + "\n" + body


def _current_header(state: FileState, annotated: Annotated) -> list[str]:
    header = [
        f"===== LIGHTHOUSE CURRENT VIEW: {state.path} =====",
        f"language: {annotated.language or 'unknown'} | version {state.version} | {state.lines} lines | "
        f"sha256 {state.sha256}",
        f"last change: {logic.iso(state.changed_at)} by {state.agent} ({state.source})",
        f"anchors: {len(annotated.anchors)} | warnings: {len(annotated.findings)}"
        + (" | the parser found syntax errors" if annotated.parse_errors else ""),
    ]
    header += [f"  AST_ANCHOR: {a.anchor_id} [{a.kind}:{a.name}] line {a.line}" for a in annotated.anchors]
    header += [f"  WARNING line {f.line}: [{f.rule}] ({f.severity}) {f.message}" for f in annotated.findings]
    header.append("=" * 40)
    return header


def _inline(text: str, annotated: Annotated) -> str:
    """The content with anchor and security comments above the lines they are about (not in JSON,
    which has no comments: there the header lists them)."""
    prefix = COMMENT.get(annotated.language or "", "#")
    lines = text.splitlines(keepends=True)
    if not prefix:
        return text
    notes: dict[int, list[str]] = {}
    for anchor in annotated.anchors:
        notes.setdefault(anchor.line, []).append(
            f"{anchor.indent}{prefix} AST_ANCHOR: {anchor.anchor_id} [{anchor.kind}:{anchor.name}] line {anchor.line}\n"
        )
    for finding in annotated.findings:
        line = lines[finding.line - 1] if finding.line - 1 < len(lines) else ""
        indent = line[: len(line) - len(line.lstrip())]
        notes.setdefault(finding.line, []).append(
            f"{indent}{prefix} SECURITY: [{finding.rule}] ({finding.severity}) {finding.message}\n"
        )
    out: list[str] = []
    for number, line in enumerate(lines, start=1):
        out.extend(notes.get(number, []))
        out.append(line)
    return "".join(out)


def render_history(path: str, instant: float, row: FileVersion, now: FileState, content: bytes | None) -> str:
    prefix = _prefix(language_of(path))
    header = [
        f"===== LIGHTHOUSE HISTORY VIEW: {path} at {logic.iso(instant)} =====",
        f"version {row.version} of {now.version} | events so far: {row.version} | modifications: {row.modifications}",
        f"contributors: {', '.join(row.contributors) or '-'}",
        f"first change: {logic.iso(row.first_at)} | last change before this instant: {logic.iso(row.at)} "
        f"by {row.agent} ({row.type})",
        f"since then: {now.version - row.version} events, +{now.total_added - row.total_added} "
        f"-{now.total_removed - row.total_removed} lines",
    ]
    if content is None:
        header.append(f"content not stored: {row.note}")
    header.append("=" * 40)
    text = "\n".join(f"{prefix} {line}" for line in header) + "\n"
    return text + (content.decode("utf-8", "replace") if content is not None else "")
