"""Model output -> schema-valid JSON: parse, deterministic syntax repair, schema-guided minor repair.

Written by hand: the repairs are deliberately few and deterministic (no guessing), each one is
recorded, and what cannot be repaired is an error with a category the stage uses to re-ask:
JSON_SYNTAX_ERROR (nothing parseable, including empty or garbage output), JSON_SCHEMA_MAJOR_MISMATCH
(parseable but wrong beyond safe repair). A minor mismatch that repair fixed is reported as
JSON_SCHEMA_MINOR_MISMATCH alongside the value.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

from lighthouse import jsonschemas, strictjson
from lighthouse.errors import MalformedRequest

SYNTAX = "JSON_SYNTAX_ERROR"
MINOR = "JSON_SCHEMA_MINOR_MISMATCH"
MAJOR = "JSON_SCHEMA_MAJOR_MISMATCH"
MAX_OUTPUT_CHARS = 200_000


@dataclass
class JsonResult:
    value: Any
    repairs: list[str] = field(default_factory=list)
    category: str | None = None  # MINOR when schema repairs were needed


class JsonProblem(Exception):
    def __init__(self, category: str, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.category = category
        self.message = message
        self.errors = errors or []


def parse_and_repair(text: str, schema: dict[str, Any]) -> JsonResult:
    if not text or not text.strip():
        raise JsonProblem(SYNTAX, "the output is empty")
    if len(text) > MAX_OUTPUT_CHARS:
        raise JsonProblem(SYNTAX, f"the output is longer than {MAX_OUTPUT_CHARS} characters")
    repairs: list[str] = []
    value = _parse(text.strip(), repairs)
    try:
        strictjson.check_value(value, where="the output")
    except MalformedRequest as error:
        raise JsonProblem(SYNTAX, error.message) from None
    validator = jsonschemas.compiled(schema, "output_schema")
    if not jsonschemas.violations(validator, value):
        return JsonResult(value, repairs)
    repaired = _repair_to_schema(copy.deepcopy(value), schema, "$", repairs)
    errors = [f"{v['path']}: {v['message']}" for v in jsonschemas.violations(validator, repaired)]
    if errors:
        raise JsonProblem(MAJOR, "the output does not match the schema", errors)
    return JsonResult(repaired, repairs, MINOR)


def _parse(text: str, repairs: list[str]) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    candidate = _json_part(text, repairs)
    for description, fix in _SYNTAX_FIXES:
        try:
            return json.loads(candidate)
        except ValueError:
            fixed = fix(candidate)
            if fixed != candidate:
                repairs.append(description)
                candidate = fixed
    try:
        return json.loads(candidate)
    except ValueError as error:
        raise JsonProblem(SYNTAX, f"the output is not valid JSON after repair: {error}") from error


def _json_part(text: str, repairs: list[str]) -> str:
    """The JSON inside a reply: out of a Markdown code fence, without the prose around it."""
    candidate = text
    fenced = re.search(r"```(?:json|JSON)?\s*(.*?)\s*```", candidate, re.DOTALL)
    if fenced:
        candidate = fenced.group(1)
        repairs.append("removed a Markdown code fence")
    start = min((i for i in (candidate.find("{"), candidate.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise JsonProblem(SYNTAX, "no JSON object or array in the output")
    if start == 0 and candidate.rstrip()[-1:] in ("}", "]"):
        return candidate
    end = max(candidate.rfind("}"), candidate.rfind("]"))
    trimmed = candidate[start : end + 1] if end > start else candidate[start:]
    if trimmed != candidate:
        repairs.append("dropped text around the JSON")
    return trimmed


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n\"]*$|/\*.*?\*/", "", text, flags=re.MULTILINE | re.DOTALL)


def _trailing_commas(text: str) -> str:
    return re.sub(r",\s*([}\]])", r"\1", text)


def _python_literals(text: str) -> str:
    return re.sub(r"\b(True|False|None)\b", lambda m: {"True": "true", "False": "false", "None": "null"}[m[1]], text)


def _single_quotes(text: str) -> str:
    if '"' in text:
        return text
    return text.replace("'", '"')


def _close_brackets(text: str) -> str:
    """Close an unterminated string and every bracket left open, innermost first."""
    stack: list[str] = []
    in_string = escaped = False
    for char in text:
        if in_string:
            in_string, escaped = _string_continues(char, escaped)
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append("}" if char == "{" else "]")
        elif char in "}]" and stack:
            stack.pop()
    return text + ('"' if in_string else "") + "".join(reversed(stack))


def _string_continues(char: str, escaped: bool) -> tuple[bool, bool]:
    """(still inside the string, the next character is escaped) after `char` inside a string."""
    if escaped:
        return True, False
    if char == "\\":
        return True, True
    return char != '"', False


_SYNTAX_FIXES = (
    ("removed comments", _strip_comments),
    ("removed trailing commas", _trailing_commas),
    ("converted Python literals", _python_literals),
    ("replaced single quotes", _single_quotes),
    ("closed unbalanced brackets", _close_brackets),
)


def _repair_to_schema(value: Any, schema: dict[str, Any], path: str, repairs: list[str]) -> Any:
    """Fill defaults and apply safe coercions where the schema says what is expected."""
    expected = schema.get("type")
    if expected == "object" and isinstance(value, dict):
        return _repair_object(value, schema, path, repairs)
    if expected == "array":
        if not isinstance(value, list):
            repairs.append(f"{path}: wrapped a single value in a list")
            value = [value]
        items = schema.get("items")
        if isinstance(items, dict):
            return [_repair_to_schema(v, items, f"{path}[{i}]", repairs) for i, v in enumerate(value)]
        return value
    coerced = _coerce(value, expected)
    if coerced is not _NO_COERCION:
        repairs.append(f"{path}: coerced {type(value).__name__} to {expected}")
        return coerced
    return value


def _repair_object(value: dict[str, Any], schema: dict[str, Any], path: str, repairs: list[str]) -> Any:
    properties = schema.get("properties", {})
    for name, subschema in properties.items():
        if not isinstance(subschema, dict):
            continue
        if name not in value and "default" in subschema:
            value[name] = copy.deepcopy(subschema["default"])
            repairs.append(f"{path}.{name}: filled the default")
        elif name in value:
            value[name] = _repair_to_schema(value[name], subschema, f"{path}.{name}", repairs)
    if schema.get("additionalProperties") is False:
        for name in [n for n in value if n not in properties]:
            del value[name]
            repairs.append(f"{path}.{name}: dropped (not in the schema)")
    return value


_NO_COERCION = object()


def _coerce(value: Any, expected: Any) -> Any:
    if expected in ("integer", "number") and isinstance(value, str):
        return _number(value, expected)
    if expected == "boolean" and isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if expected == "string" and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return _NO_COERCION


def _number(text: str, expected: str) -> Any:
    try:
        number = float(text.strip())
    except ValueError:
        return _NO_COERCION
    if expected == "integer":
        return int(number) if number.is_integer() else _NO_COERCION
    return number
