"""Where validation requests live: stream ids (the event store and the read models do the I/O)."""

from __future__ import annotations

POLICY_STREAM = "validation-policy"


def stream_id(request_id: str) -> str:
    return f"validation#{request_id}"
