"""Shadow suggestions: what experts proposed instead (`modify` votes with suggestions), indexed by the
file (or, for Bash, the project's `commands`) the call was about, written with the vote's append."""

from __future__ import annotations

import json
from typing import Any

from lighthouse.errors import ValidationFailed
from lighthouse.events.recorders import Action
from lighthouse.history.logic import project_of, relative_to
from lighthouse.history.store import shadow_model, version_key
from lighthouse.validation.models import ValidationRequested, ValidationState

COMMANDS = "commands"  # the pseudo-path of a project's Bash suggestions


def subject(state: ValidationState) -> tuple[str, str] | None:
    """(project, path) the call was about, or None when it names no file inside a project."""
    request = state.request
    if request is None or not request.cwd:
        return None
    try:
        project = project_of(request.cwd, None)
        if request.tool_name == "Bash":
            return project, COMMANDS
        path = request.tool_input.get("file_path") or request.tool_input.get("notebook_path")
        return (project, relative_to(path, request.cwd)) if isinstance(path, str) else None
    except ValidationFailed:
        return None


def shadow_writes(table: str, before: ValidationState, after: ValidationState) -> list[Action]:
    """A Put per new `modify` vote with suggestions, under the file (or `commands`) it was about."""
    found = subject(after)
    if found is None or after.request is None:
        return []
    project, path = found
    actions: list[Action] = []
    for expert, voted in after.votes.items():
        vote = voted.vote or {}
        if expert in before.votes or vote.get("decision") != "modify" or not vote.get("suggestions"):
            continue
        item = {
            "model": {"S": shadow_model(project, path)},
            "key": {"S": f"{version_key(voted.at, 0)}#{voted.request_id}#{expert}"},
            "doc": {"S": json.dumps(_suggestion(after.request, expert, voted.at, vote, path), sort_keys=True)},
        }
        actions.append({"Put": {"TableName": table, "Item": item}})
    return actions


def _suggestion(
    request: ValidationRequested, expert: str, at: float, vote: dict[str, Any], path: str
) -> dict[str, Any]:
    return {
        "request_id": request.request_id, "expert": expert, "at": at, "agent": request.agent,
        "tool_name": request.tool_name, "path": path,
        "command": request.tool_input.get("command") if path == COMMANDS else None,
        "confidence": vote.get("confidence"), "reasoning": vote.get("reasoning"),
        "concerns": vote.get("concerns") or [], "suggestions": vote.get("suggestions") or [],
    }  # fmt: skip
