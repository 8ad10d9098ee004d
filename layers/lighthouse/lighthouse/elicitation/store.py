"""Where elicitations live: stream ids and the ids of the waits their executions hold."""

from __future__ import annotations


def stream_id(elicitation_id: str) -> str:
    return f"elicitation#{elicitation_id}"


def wait_id(elicitation_id: str) -> str:
    """The task-token record of the execution that waits for this elicitation's end."""
    return f"elicitation#{elicitation_id}"


def violation_stream(violation_id: str) -> str:
    return f"violation#{violation_id}"
