"""Signed run notifications: `X-Lighthouse-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over
`<t>.<body>`, with the delivery id in the body, so a receiver can check the sender, refuse a body
older than its tolerance, and refuse a delivery it has seen (a replay).

Written by hand: it is the scheme (Stripe's and GitHub's shape) in a dozen lines, and the receiver's
half (`verify`) is what our users copy.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

SIGNATURE_HEADER = "X-Lighthouse-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    pass


def sign(key: bytes, body: bytes, at: int) -> str:
    digest = hmac.new(key, str(at).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def verify(
    key: bytes,
    body: bytes,
    header: str,
    now: Callable[[], float] = time.time,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> int:
    """The signed timestamp, if `header` signs `body` with `key` within the tolerance; else SignatureError."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        at = int(fields["t"])
        given = fields["v1"]
    except (KeyError, ValueError) as error:
        raise SignatureError("the signature header is not t=<seconds>,v1=<hex>") from error
    if abs(now() - at) > tolerance_seconds:
        raise SignatureError(f"the signature is {abs(now() - at):.0f} s old; the tolerance is {tolerance_seconds} s")
    if not hmac.compare_digest(sign(key, body, at).split("v1=", 1)[1], given):
        raise SignatureError("the signature does not match the body")
    return at
