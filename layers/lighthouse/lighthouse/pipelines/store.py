"""Where pipelines and tasks live: stream ids (the event store, S3 and the memory table do the I/O)."""

from __future__ import annotations

PIPELINE_INDEX = "pipeline-index"


def pipeline_stream(name: str) -> str:
    return f"pipeline#{name}"


def task_stream(task_id: str) -> str:
    return f"task#{task_id}"
