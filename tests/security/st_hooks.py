"""Schemathesis hooks (loaded with SCHEMATHESIS_HOOKS=tests.security.st_hooks): the platform's own
checks on every generated response."""

from __future__ import annotations

from typing import Any

import schemathesis

# Credentials are long; shorter header values (content types, small ids) may appear legitimately.
MIN_CREDENTIAL_CHARS = 16


@schemathesis.check
def no_credential_echo(ctx: Any, response: Any, case: Any) -> None:
    """No response may carry back a credential the caller sent (a bearer token, a hook token)."""
    sent = dict(response.request.headers)
    text = bytes(response.content or b"").decode("utf-8", "replace")
    for name, value in sent.items():
        if name.lower() not in ("authorization", "x-lighthouse-hook-token"):
            continue
        credential = str(value).split(" ", 1)[-1]
        if len(credential) >= MIN_CREDENTIAL_CHARS and credential in text:
            raise AssertionError(f"the response echoes the {name} header the caller sent")
