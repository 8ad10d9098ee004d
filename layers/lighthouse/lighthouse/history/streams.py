"""Any event stream at a past instant: its events recorded up to then, folded by its own fold.

Who may read a stream's past is who may read the object now: its participants (below) and admins.
Secret-looking fields (salts, tokens, keys) are redacted from the state.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from lighthouse.errors import ValidationFailed

# stream prefix -> (module, fold attribute, who besides admins may read it from the state)
Readers = Callable[[dict[str, Any], str], set[str]]


def _fields(*names: str) -> Readers:
    return lambda state, stream: {str(state.get(name)) for name in names if state.get(name)}


def _own(state: dict[str, Any], stream: str) -> set[str]:
    return {stream.split("#", 1)[1]}


def _validation(state: dict[str, Any], stream: str) -> set[str]:
    request = state.get("request") or {}
    return {str(request["agent"])} if request.get("agent") else set()


FOLDS: dict[str, tuple[str, str, Readers]] = {
    "elicitation": ("lighthouse.elicitation.logic", "FOLD", _fields("from_agent", "to_agent")),
    "validation": ("lighthouse.validation.logic", "FOLD", _validation),
    "task": ("lighthouse.pipelines.logic", "TASK_FOLD", _fields("owner")),
    "run": ("lighthouse.runs.logic", "RUN_FOLD", _fields("launched_by")),
    "agent": ("lighthouse.agents.logic", "FOLD", _own),
    "fleet": ("lighthouse.fleet.logic", "FLEET_FOLD", _own),
    "fleetcmd": ("lighthouse.fleet.logic", "COMMAND_FOLD", _fields("by", "agent_id")),
    "rollout": ("lighthouse.fleet.rollouts", "ROLLOUT_FOLD", lambda state, stream: set()),
    "directive": ("lighthouse.runs.logic", "DIRECTIVE_FOLD", lambda state, stream: set()),
    "file": ("lighthouse.history.logic", "FILE_FOLD", lambda state, stream: set()),
}
STREAM_ID = re.compile(r"^[a-z][a-z\-]{0,31}#[A-Za-z0-9_.:#\-]{1,300}$")
_SECRET = re.compile(r"(salt|secret|password|token|key_hex|api_key|private)", re.IGNORECASE)


def fold_of(stream_id: str) -> tuple[Any, Readers]:
    if not STREAM_ID.match(stream_id):
        raise ValidationFailed(
            f"{stream_id[:80]!r} is not a stream id (<kind>#<id>, e.g. elicitation#0f3a...)", {"stream": stream_id[:80]}
        )
    kind = stream_id.split("#", 1)[0]
    if kind not in FOLDS:
        raise ValidationFailed(
            f"streams of kind {kind!r} have no state to show; kinds: {', '.join(sorted(FOLDS))}", {"kind": kind}
        )
    module, attribute, readers = FOLDS[kind]
    return getattr(importlib.import_module(module), attribute), readers


def as_document(state: Any) -> dict[str, Any]:
    plain = state.model_dump(mode="json", by_alias=True) if isinstance(state, BaseModel) else dict(state)
    redacted: dict[str, Any] = redact(plain)
    return redacted


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: "[redacted]" if _SECRET.search(str(key)) else redact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value
