"""Path and query parameters as routes declare them: each declaration both checks a request and
documents itself in the OpenAPI document, so the two cannot drift."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from lighthouse.agents.models import AGENT_ID_PATTERN
from lighthouse.errors import MalformedRequest, ValidationFailed
from lighthouse.paging import CURSOR_PATTERN, MAX_CURSOR_CHARS, decode_cursor
from lighthouse.pipelines.connections import NAME_PATTERN as CONNECTION_NAME

HEX_ID = r"^[0-9a-f]{32}$"
NAME = r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$"
# Every path parameter, by name; a route may only use names listed here.
PATH_PATTERNS: dict[str, str] = {
    "agent_id": AGENT_ID_PATTERN,
    "elicitation_id": HEX_ID,
    "request_id": HEX_ID,
    "task_id": HEX_ID,
    "token_id": HEX_ID,
    "name": NAME,
    "connection": CONNECTION_NAME,
    "command_id": r"^cmd-[0-9a-f]{24}$",
    "rollout_id": r"^ro-[0-9a-f]{24}$",
    "run_id": r"^(run-[0-9a-f]{16}|sched-[a-z0-9-]{1,80})$",
    "directive_id": r"^[a-z][a-z0-9_.-]{0,63}$",
    "task_key": r"^[a-z][a-z0-9_]{0,63}$",
    "project": r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$",
    # A file inside a project (greedy: slashes included); history.logic.confine checks it further.
    "file_path": r"^[^\x00-\x1f\x7f\\]{1,1024}$",
    "instant": r"^[0-9][0-9T:.+\-Z]{0,39}$",
    # `<kind>:<id>`: a stream id with its first '#' written ':' ('#' would end the URL's path).
    "stream_id": r"^[a-z][a-z\-]{0,31}:[A-Za-z0-9_.:\-]{1,200}$",
    "flag": r"^[a-z][a-z0-9_]{0,63}$",
    "execution_arn": (
        r"^arn:aws[a-z-]{0,20}:states:[a-z0-9-]{1,30}:[0-9]{12}:execution:[A-Za-z0-9_.-]{1,80}:[A-Za-z0-9_.-]{1,80}$"
    ),
}
MAX_LENGTH = {"file_path": 1024}
_COMPILED = {name: re.compile(pattern) for name, pattern in PATH_PATTERNS.items()}


def check_path_param(name: str, value: str) -> str:
    """A path id that matches its pattern; `..`, `/`, `?`, `#`, NUL and the like never do."""
    if len(value) > MAX_LENGTH.get(name, 256) or not _COMPILED[name].fullmatch(value) or ".." in value:
        raise MalformedRequest(
            f"{name} {value[:80]!r} is not a valid id (pattern {PATH_PATTERNS[name]})", code="INVALID_ID"
        )
    return value


@dataclass(frozen=True)
class Query:
    """A query parameter: `int` within [minimum, maximum], `str` up to max_length matching pattern,
    `choice` among choices, or `cursor` (an opaque page token this API issued)."""

    name: str
    kind: Literal["int", "str", "choice", "cursor"]
    description: str
    default: Any = None
    minimum: int = 0
    maximum: int = 0
    pattern: str | None = None
    max_length: int = 256
    choices: tuple[str, ...] = ()
    required: bool = False

    def parse(self, raw: str | None) -> Any:
        if raw is None:
            if self.required:
                raise MalformedRequest(f"query parameter {self.name} is required", code="MISSING_PARAMETER")
            return self.default
        if self.kind == "int":
            return self._int(raw)
        if self.kind == "cursor":
            decode_cursor(raw, self.max_length)  # refused here (400) before any service sees it
            return raw
        return self._text(raw)

    def _text(self, raw: str) -> str:
        if len(raw) > self.max_length or "\x00" in raw:
            raise ValidationFailed(
                f"{self.name} is longer than {self.max_length} characters", _field(self.name, "long")
            )
        if self.kind == "choice" and raw not in self.choices:
            raise ValidationFailed(f"{self.name} must be one of {', '.join(self.choices)}", _field(self.name, "choice"))
        if self.pattern and not re.fullmatch(self.pattern, raw):
            raise ValidationFailed(f"{self.name} must match {self.pattern}", _field(self.name, "pattern"))
        return raw

    def _int(self, raw: str) -> int:
        # int() accepts "1_000", " 7" and non-ASCII digits; a query parameter is plain ASCII digits.
        if not re.fullmatch(r"-?[0-9]{1,9}", raw) or not self.minimum <= int(raw) <= self.maximum:
            raise ValidationFailed(
                f"{self.name} must be an integer between {self.minimum} and {self.maximum}",
                _field(self.name, "out of range"),
            )
        return int(raw)

    def openapi(self) -> dict[str, Any]:
        schema: dict[str, Any]
        if self.kind == "int":
            schema = {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}
        elif self.kind == "choice":
            schema = {"type": "string", "enum": list(self.choices)}
        elif self.kind == "cursor":
            schema = {"type": "string", "maxLength": self.max_length, "pattern": CURSOR_PATTERN}
        else:
            schema = {"type": "string", "maxLength": self.max_length}
            if self.pattern:
                schema["pattern"] = self.pattern
        if self.default is not None:
            schema["default"] = self.default
        return {
            "name": self.name,
            "in": "query",
            "required": self.required,
            "description": self.description,
            "schema": schema,
        }


def _field(name: str, message: str) -> dict[str, Any]:
    return {"fields": [{"path": name, "message": message}]}


WAIT = Query("wait", "int", "seconds to hold the request open for a change (long-poll)", 0, 0, 20)
CURSOR = Query("next_token", "cursor", "the next_token of the previous page", max_length=MAX_CURSOR_CHARS)


def limit(default: int = 50, maximum: int = 200) -> Query:
    return Query("limit", "int", f"page size, 1..{maximum}", default, 1, maximum)
