"""The one JSON reader for everything that arrives from outside: HTTP bodies, queue messages, the
hook's stdin, the CLI's files and opaque page tokens.

Python's `json` accepts far more than JSON (RFC 8259) and more than the rest of the platform can
store or sign: `NaN` and `Infinity`, numbers that overflow to infinity, lone UTF-16 surrogates
(`"\\ud800"`, which no UTF-8 encoder can write back), duplicate keys (two parsers may keep different
ones), and nesting deep enough to exhaust the interpreter's recursion limit. Each is refused here
with a `MalformedJson` whose `code` names the rule and whose message says where.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

from lighthouse.errors import MalformedRequest, PayloadTooLarge

MAX_DEPTH = 64
# The largest finite IEEE-754 double; integers beyond it cannot be represented by any JSON peer
# that reads numbers as doubles (JavaScript, DynamoDB's number type holds 38 digits).
MAX_NUMBER = sys.float_info.max
_SURROGATE = re.compile("[\ud800-\udfff]")
_NESTED = (dict, list)


def MalformedJson(code: str, message: str, details: dict[str, Any] | None = None) -> MalformedRequest:
    """A 400 for input that is not the JSON this API accepts; `code` names the rule it broke."""
    return MalformedRequest(message, details, code=code)


class _Refused(Exception):
    """Raised from inside the decoder's hooks; turned into MalformedJson by `loads`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _refuse_constant(name: str) -> Any:
    raise _Refused("NON_FINITE_NUMBER", f"{name} is not a JSON number; send a finite number or null")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused("NUMBER_OUT_OF_RANGE", f"number {text[:40]} is outside the range of a double (±1.8e308)")
    return value


def _parse_int(text: str) -> int:
    # 310 digits already exceed MAX_NUMBER; checking the length first keeps int() cheap.
    if len(text.lstrip("-")) > 309 or abs(value := int(text)) > MAX_NUMBER:
        raise _Refused("NUMBER_OUT_OF_RANGE", f"integer {text[:40]}... is outside the range of a double (±1.8e308)")
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        keys = [key for key, _ in pairs]
        duplicate = next(key for index, key in enumerate(keys) if key in keys[:index])
        raise _Refused("DUPLICATE_KEY", f"key {duplicate[:64]!r} appears twice in one object")
    return result


def _path(parts: tuple[str | int, ...]) -> str:
    shown = parts if len(parts) <= 12 else (*parts[:6], "...", *parts[-5:])
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in shown)


# Decoded text that is valid UTF-8 holds no surrogate code points: only a \uD800-\uDFFF escape
# can make one, so values without such an escape skip the per-string check.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _check_depth(value: Any, max_depth: int, where: str) -> None:
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(value, 1, ())]
    while stack:
        node, depth, parts = stack.pop()
        if depth > max_depth:
            raise MalformedJson(
                "TOO_DEEP",
                f"{where} nests deeper than {max_depth} levels (at {_path(parts)})",
                {"path": _path(parts), "limit_depth": max_depth},
            )
        if isinstance(node, dict):
            stack.extend(
                (child, depth + 1, (*parts, key[:64])) for key, child in node.items() if type(child) in _NESTED
            )
        else:
            stack.extend((child, depth + 1, (*parts, i)) for i, child in enumerate(node) if type(child) in _NESTED)


def check_value(value: Any, *, max_depth: int = MAX_DEPTH, where: str = "body") -> None:
    """The same rules on an already-decoded value (YAML files, values built in code): JSON types
    only (YAML can also make dates, sets and bytes), depth, finite numbers, no lone surrogates.

    Iterative, so a hostile value cannot exhaust the stack while it is being checked.
    """
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(value, 1, ())]
    while stack:
        node, depth, parts = stack.pop()
        if isinstance(node, dict | list):
            stack.extend(_children(node, depth, parts, max_depth, where))
        else:
            _check_scalar(node, parts, where)


def _check_scalar(node: Any, parts: tuple[str | int, ...], where: str) -> None:
    if isinstance(node, str):
        if _SURROGATE.search(node):
            raise MalformedJson(
                "LONE_SURROGATE",
                f"{where} has a string with an unpaired UTF-16 surrogate at {_path(parts)}",
                {"path": _path(parts)},
            )
    elif isinstance(node, float):
        if not math.isfinite(node):
            raise MalformedJson(
                "NON_FINITE_NUMBER", f"{where} has NaN or Infinity at {_path(parts)}", {"path": _path(parts)}
            )
    elif node is not None and not isinstance(node, bool | int):
        raise MalformedJson(
            "NOT_JSON",
            f"{where} has a {type(node).__name__} at {_path(parts)}, which JSON cannot hold",
            {"path": _path(parts)},
        )


def _children(
    node: dict[Any, Any] | list[Any], depth: int, parts: tuple[str | int, ...], max_depth: int, where: str
) -> list[tuple[Any, int, tuple[str | int, ...]]]:
    if depth > max_depth:
        raise MalformedJson(
            "TOO_DEEP",
            f"{where} nests deeper than {max_depth} levels (at {_path(parts)})",
            {"path": _path(parts), "limit_depth": max_depth},
        )
    if isinstance(node, list):
        return [(child, depth + 1, (*parts, index)) for index, child in enumerate(node)]
    for key in node:
        if not isinstance(key, str):
            raise MalformedJson(
                "NON_STRING_KEY", f"{where} has a non-string key at {_path(parts)}", {"path": _path(parts)}
            )
        _check_scalar(key, parts, where)
    return [(child, depth + 1, (*parts, key[:64])) for key, child in node.items()]


def _text(data: bytes, where: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedJson(
            "INVALID_UTF8",
            f"{where} is not valid UTF-8 (byte {error.start}: {error.reason})",
            {"position": error.start},
        ) from error
    if text.startswith("\ufeff"):
        raise MalformedJson("INVALID_UTF8", f"{where} starts with a byte order mark; send plain UTF-8", {"position": 0})
    return text


def _decode(text: str, max_depth: int, where: str) -> Any:
    try:
        return json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_parse_float,
            parse_int=_parse_int,
            object_pairs_hook=_object,
        )
    except _Refused as refused:
        raise MalformedJson(refused.code, f"{where}: {refused}") from None
    except RecursionError:
        raise MalformedJson(
            "TOO_DEEP", f"{where} nests deeper than {max_depth} levels", {"limit_depth": max_depth}
        ) from None
    except json.JSONDecodeError as error:
        raise MalformedJson(
            "INVALID_JSON",
            f"{where} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}",
            {"position": error.pos, "line": error.lineno, "column": error.colno},
        ) from None
    except ValueError as error:  # e.g. an integer past the interpreter's digit limit
        raise MalformedJson("NUMBER_OUT_OF_RANGE", f"{where}: {error}") from None


def loads(
    raw: bytes | str | None,
    *,
    max_bytes: int,
    max_depth: int = MAX_DEPTH,
    where: str = "body",
    empty: Any = None,
) -> Any:
    """Decode `raw` as strict JSON; `empty` is returned for an empty body (None: empty is an error)."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else (raw or b"")
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"{where} is {len(data)} bytes; the limit is {max_bytes}", {"limit_bytes": max_bytes})
    if not data.strip():
        if empty is not None:
            return empty
        raise MalformedJson("EMPTY_BODY", f"{where} is empty; send a JSON document")
    text = _text(data, where)
    value = _decode(text, max_depth, where)
    if _SURROGATE_ESCAPE.search(text):
        check_value(value, max_depth=max_depth, where=where)
    elif type(value) in _NESTED and text.count("[") + text.count("{") > max_depth:
        _check_depth(value, max_depth, where)
    return value


def loads_object(raw: bytes | str | None, *, max_bytes: int, where: str = "body", empty: Any = None) -> dict[str, Any]:
    value = loads(raw, max_bytes=max_bytes, where=where, empty=empty)
    if not isinstance(value, dict):
        raise MalformedJson("NOT_AN_OBJECT", f"{where} must be a JSON object, not {type(value).__name__}")
    return value


def dumps_canonical(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 as is: the form signatures and hashes are computed over.

    `allow_nan=False` makes a non-finite number that slipped past the reader an error here too,
    instead of a `NaN` that no reader (and no signature check) accepts later.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
