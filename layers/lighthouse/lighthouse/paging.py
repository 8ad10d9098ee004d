"""Opaque page tokens: what a list route returns as `next_token` and accepts back.

A token is base64url of canonical JSON, so it survives a query string unescaped; decoding is
strict (size, alphabet, the strict JSON reader), so a forged or mangled token is a 400, never a
query the storage layer chokes on.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from lighthouse import strictjson
from lighthouse.errors import MalformedRequest

MAX_CURSOR_CHARS = 1024
CURSOR_PATTERN = r"^[A-Za-z0-9_\-]+=*$"


def encode_cursor(value: Any) -> str:
    """An opaque page token: base64url of canonical JSON, so it survives query strings unescaped."""
    return base64.urlsafe_b64encode(strictjson.dumps_canonical(value).encode()).decode()


def decode_cursor(token: str, max_chars: int = MAX_CURSOR_CHARS) -> Any:
    """The value behind a page token, or a 400 that says the token is not one this API issued."""
    refused = MalformedRequest("next_token is not a token this API issued", code="INVALID_CURSOR")
    if len(token) > max_chars or not re.fullmatch(r"[A-Za-z0-9_\-]+=*", token):
        raise refused
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return strictjson.loads(raw, max_bytes=max_chars, max_depth=4, where="next_token")
    except (binascii.Error, ValueError, MalformedRequest) as error:
        raise refused from error


def cursor_string(token: str | None) -> str | None:
    """A page token that wraps a plain string key (the read models' `key`)."""
    if token is None:
        return None
    value = decode_cursor(token)
    if not isinstance(value, str) or not value or len(value) > 512:
        raise MalformedRequest("next_token is not a token this API issued", code="INVALID_CURSOR")
    return value
