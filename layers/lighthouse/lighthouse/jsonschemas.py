"""JSON Schemas that users write (elicitation questions, pipeline output and tool schemas): checked
once when they are submitted, then validated against on a linear-time regex engine.

Why `jsonschema-rs` (Rust) and its `regex` engine: a user's `pattern` runs against other users'
data, so a backtracking engine (Python's `re`, which the `jsonschema` package uses) lets one schema
like `^(a+)+$` stall the process for seconds on a 30-character answer. Rust's `regex` crate matches
in time linear in the input and refuses the features that need backtracking (look-around,
back-references) when the schema is compiled, which is when the author can still fix it.

Why the checks before compiling: a `$ref` that points nowhere, points outside the document, or
loops back to itself without consuming any of the instance is accepted by some validators until the
first answer arrives, and then every answer fails. Here each is a 422 at submission, naming the
JSON path of the offending keyword.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import jsonschema_rs

from lighthouse import strictjson
from lighthouse.errors import ValidationFailed

MAX_VIOLATIONS_REPORTED = 50
# Keywords that resolve or introduce documents by URI: a submitted schema is one closed document.
_REFUSED_KEYWORDS = ("$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor", "$id")
# Keywords whose subschemas apply to the same instance (so a cycle through them never terminates).
_SAME_INSTANCE_LISTS = ("allOf", "anyOf", "oneOf")
_SAME_INSTANCE_SINGLE = ("not", "if", "then", "else")
# Keywords whose values are subschemas (maps of them, lists of them, or one).
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_SINGLES = (
    "not", "if", "then", "else", "items", "contains", "additionalProperties", "propertyNames",
    "unevaluatedItems", "unevaluatedProperties",
)  # fmt: skip

Pointer = tuple[str, ...]


def _json_path(parts: Pointer | list[str | int], root: str = "$") -> str:
    return root + "".join(f"[{part}]" if isinstance(part, int) or str(part).isdigit() else f".{part}" for part in parts)


def _refused(where: str, parts: Pointer, message: str) -> ValidationFailed:
    path = _json_path(parts, where)
    return ValidationFailed(
        f"{where} is not accepted: {message} at {path}", {"fields": [{"path": path, "message": message}]}
    )


def _subschemas(schema: dict[str, Any], pointer: Pointer) -> Iterator[tuple[Pointer, Any]]:
    for key in _SCHEMA_MAPS:
        value = schema.get(key)
        if isinstance(value, dict):
            for name, child in value.items():
                yield (*pointer, key, name), child
    for key in _SCHEMA_LISTS:
        value = schema.get(key)
        if isinstance(value, list):
            for index, child in enumerate(value):
                yield (*pointer, key, str(index)), child
    for key in _SCHEMA_SINGLES:
        if key in schema:
            yield (*pointer, key), schema[key]


def _walk(schema: Any) -> Iterator[tuple[Pointer, dict[str, Any]]]:
    """Every subschema object in the document with its JSON pointer (iteratively)."""
    stack: list[tuple[Pointer, Any]] = [((), schema)]
    while stack:
        pointer, node = stack.pop()
        if isinstance(node, dict):
            yield pointer, node
            stack.extend(_subschemas(node, pointer))


def _follow(root: Any, parts: tuple[str, ...]) -> Any:
    """The value at a JSON pointer's unescaped parts, or None if nothing is there."""
    node = root
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _resolve(root: Any, ref: str, anchors: dict[str, Pointer]) -> Pointer | None:
    """The pointer a local `$ref` names, or None if nothing is there."""
    fragment = ref[1:]
    if fragment and not fragment.startswith("/"):
        return anchors.get(fragment)
    parts = tuple(p.replace("~1", "/").replace("~0", "~") for p in fragment.split("/")[1:]) if fragment else ()
    return parts if isinstance(_follow(root, parts), dict | bool) else None


def _reference_edge(
    root: Any, node: dict[str, Any], pointer: Pointer, anchors: dict[str, Pointer], where: str
) -> list[Pointer]:
    """The schema this node's `$ref` applies (refusing a remote or dangling one), if it has one."""
    if "$ref" not in node:
        return []
    ref = node["$ref"]
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise _refused(where, (*pointer, "$ref"), "only local references ('#...') are allowed")
    target = _resolve(root, ref, anchors)
    if target is None:
        raise _refused(where, (*pointer, "$ref"), f"reference {ref[:100]!r} points to nothing")
    return [target]


def _same_instance_edges(node: dict[str, Any], pointer: Pointer) -> list[Pointer]:
    """Subschemas that apply to the very instance this node applies to."""
    edges = [
        (*pointer, key, str(i))
        for key in _SAME_INSTANCE_LISTS
        if isinstance(node.get(key), list)
        for i in range(len(node[key]))
    ]
    return edges + [(*pointer, key) for key in _SAME_INSTANCE_SINGLE if key in node]


def check_references(schema: Any, where: str = "schema") -> None:
    """Refuse remote, dynamic, dangling and looping references (422 naming the JSON path)."""
    nodes = dict(_walk(schema))
    anchors = {node["$anchor"]: pointer for pointer, node in nodes.items() if isinstance(node.get("$anchor"), str)}
    edges: dict[Pointer, list[Pointer]] = {}
    for pointer, node in nodes.items():
        refused = next((keyword for keyword in _REFUSED_KEYWORDS if keyword in node), None)
        if refused:
            raise _refused(where, (*pointer, refused), f"{refused} is not supported (one self-contained document)")
        edges[pointer] = _reference_edge(schema, node, pointer, anchors, where) + _same_instance_edges(node, pointer)
    _refuse_cycles(edges, where)


def _refuse_cycles(edges: dict[Pointer, list[Pointer]], where: str) -> None:
    """A cycle of same-instance applicators (`$ref`, allOf, not, ...) never terminates: refuse it."""
    done: set[Pointer] = set()
    for start in edges:
        if start in done:
            continue
        on_path: set[Pointer] = {start}
        stack: list[tuple[Pointer, Iterator[Pointer]]] = [(start, iter(edges.get(start, [])))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                on_path.discard(node)
                done.add(node)
            elif child in on_path:
                raise _refused(where, node, "references loop back to the same schema without consuming input")
            elif child not in done:
                on_path.add(child)
                stack.append((child, iter(edges.get(child, []))))


def _no_retrieval(uri: str) -> Any:
    raise ValueError(f"remote references are not fetched: {uri}")


def compile_schema(schema: Any, where: str = "schema") -> Any:
    """A validator for a submitted schema; ValidationFailed (422) for anything it cannot safely be."""
    if not isinstance(schema, dict | bool):
        raise ValidationFailed(f"{where} must be a JSON Schema object", {"fields": [{"path": where}]})
    try:
        jsonschema_rs.meta.validate(schema)
    except jsonschema_rs.ValidationError as error:
        path = _json_path(list(error.instance_path), where)
        raise ValidationFailed(
            f"{where} is not valid JSON Schema 2020-12: {error.message} at {path}",
            {"fields": [{"path": path, "message": error.message}]},
        ) from None
    check_references(schema, where)
    try:
        return jsonschema_rs.Draft202012Validator(
            schema, validate_formats=True, pattern_options=jsonschema_rs.RegexOptions(), retriever=_no_retrieval
        )
    except jsonschema_rs.ValidationError as error:
        # e.g. a pattern with look-around or back-references, which a linear-time engine refuses
        path = _json_path(list(error.instance_path), where)
        raise ValidationFailed(
            f"{where} cannot be compiled: {error.message} at {path} (patterns may not use look-around or"
            " back-references)",
            {"fields": [{"path": path, "message": error.message}]},
        ) from None


@functools.lru_cache(maxsize=256)
def _cached(schema_json: str, where: str) -> Any:
    return compile_schema(json.loads(schema_json), where)


def compiled(schema: Any, where: str = "schema") -> Any:
    """`compile_schema`, once per distinct schema (keyed by its canonical JSON) in this container."""
    return _cached(strictjson.dumps_canonical(schema), where)


def errors_of(schema: Any, data: Any, where: str = "schema") -> list[dict[str, str]]:
    """`violations` of `data` against a schema given as a value."""
    return violations(compiled(schema, where), data)


def violations(validator: Any, data: Any) -> list[dict[str, str]]:
    """Every way `data` breaks the schema, each with its JSON path, in a stable order."""
    found = [
        {
            "path": _json_path(list(error.instance_path)),
            "message": error.message,
            "keyword": str(error.schema_path[-1]) if error.schema_path else "",
        }
        for error in validator.iter_errors(data)
    ]
    found.sort(key=lambda v: (v["path"], v["message"]))
    return found[:MAX_VIOLATIONS_REPORTED]
