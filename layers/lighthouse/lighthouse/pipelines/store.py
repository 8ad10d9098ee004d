"""Where pipelines and tasks live: stream ids, and each task's state document (`tasks/<id>`), written
in the same transaction as every append to the task's stream (see events.inline). The event store,
S3 and the memory table do the rest of the I/O."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lighthouse.events import EventStore
from lighthouse.events.command import Outcome, execute
from lighthouse.events.inline import InlineState
from lighthouse.events.types import Event
from lighthouse.pipelines import logic
from lighthouse.pipelines.models import TaskState

PIPELINE_INDEX = "pipeline-index"
TASK_MODEL = "tasks"
# Parallel branches of one task append to its stream at once; their events do not depend on each other.
BRANCH_ATTEMPTS = 30


def pipeline_stream(name: str) -> str:
    return f"pipeline#{name}"


def task_stream(task_id: str) -> str:
    return f"task#{task_id}"


def task_states(client: Any, read_models_table: str, events: EventStore) -> InlineState[TaskState]:
    return InlineState(
        client, read_models_table, TASK_MODEL, logic.TASK_FOLD, events, key_of=lambda s: s.removeprefix("task#")
    )


def _as_recorded(state: TaskState, events: Sequence[Event]) -> Sequence[Event]:
    return events


def record(
    events: EventStore,
    tasks: InlineState[TaskState],
    task_id: str,
    recorded: Sequence[Event],
    position: tuple[TaskState, int] | None = None,
) -> Outcome[TaskState]:
    """Append events that depend on no decision (a stage's start, its telemetry and outcome) at the
    end of the task's stream, with its state document; `position` is the state the caller has."""
    return execute(
        events, task_stream(task_id), logic.TASK_FOLD, _as_recorded, recorded,
        loaded=position, inline=tasks, attempts=BRANCH_ATTEMPTS,
    )  # fmt: skip
