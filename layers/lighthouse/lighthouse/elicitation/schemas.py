"""JSON Schema rules for elicitations: limits on the question's schema, validation of answers."""

from __future__ import annotations

from typing import Any

from lighthouse import jsonschemas, strictjson
from lighthouse.errors import PayloadTooLarge, ValidationFailed

MAX_SCHEMA_BYTES = 16 * 1024
MAX_SCHEMA_DEPTH = 32
MAX_MESSAGE_BYTES = 4 * 1024
MAX_DATA_BYTES = 64 * 1024

# The flat form subset MCP clients can render: an object whose properties are primitives or enums.
_FLAT_TYPES = {"string", "number", "integer", "boolean"}


def canonical_json(value: Any) -> str:
    return strictjson.dumps_canonical(value)


def _depth(value: Any) -> int:
    """Nesting depth of containers, without recursion (so a hostile schema cannot blow the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return deepest


def check_message(message: str) -> None:
    size = len(message.encode())
    if size > MAX_MESSAGE_BYTES:
        raise PayloadTooLarge(
            f"message is {size} bytes; the limit is {MAX_MESSAGE_BYTES}", {"limit_bytes": MAX_MESSAGE_BYTES}
        )


def check_schema(schema: dict[str, Any]) -> None:
    """Reject schemas that are too large, too deep, or not valid JSON Schema 2020-12."""
    size = len(canonical_json(schema).encode())
    if size > MAX_SCHEMA_BYTES:
        raise PayloadTooLarge(
            f"schema is {size} bytes; the limit is {MAX_SCHEMA_BYTES}", {"limit_bytes": MAX_SCHEMA_BYTES}
        )
    depth = _depth(schema)
    if depth > MAX_SCHEMA_DEPTH:
        raise ValidationFailed(
            f"schema nests {depth} levels deep; the limit is {MAX_SCHEMA_DEPTH}", {"limit_depth": MAX_SCHEMA_DEPTH}
        )
    jsonschemas.compiled(schema, "schema")


def check_data_size(data: Any) -> None:
    size = len(canonical_json(data).encode())
    if size > MAX_DATA_BYTES:
        raise PayloadTooLarge(
            f"response data is {size} bytes; the limit is {MAX_DATA_BYTES}", {"limit_bytes": MAX_DATA_BYTES}
        )


def violations(schema: dict[str, Any], data: Any) -> list[dict[str, str]]:
    """Every way `data` breaks `schema`, each with its JSON path, in a stable order."""
    return jsonschemas.errors_of(schema, data)


def is_flat_form(schema: dict[str, Any]) -> bool:
    """True when an MCP client could render the schema as a form (MCP's elicitation subset)."""
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        return False
    for definition in schema["properties"].values():
        if not isinstance(definition, dict):
            return False
        kind = definition.get("type")
        if kind not in _FLAT_TYPES:
            return False
        if "enum" in definition and kind != "string":
            return False
    return set(schema) <= {"type", "properties", "required", "title", "description", "$schema"}
