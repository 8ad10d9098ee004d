"""Where agents live: their stream ids (the event store and the read models do the I/O)."""

from __future__ import annotations


def stream_id(agent_id: str) -> str:
    return f"agent#{agent_id}"
