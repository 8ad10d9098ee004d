"""Where pipelines and tasks live: stream ids, and each task's state document (`tasks/<id>`), written
in the same transaction as every append to the task's stream (see events.inline). The event store,
S3 and the memory table do the rest of the I/O."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from lighthouse.events import EventStore
from lighthouse.events.command import Outcome, execute
from lighthouse.events.inline import InlineState
from lighthouse.events.recorders import Action
from lighthouse.events.types import Event
from lighthouse.pipelines import logic
from lighthouse.pipelines.models import FINAL, TaskState

PIPELINE_INDEX = "pipeline-index"
TASK_MODEL = "tasks"
# Parallel branches of one task append to its stream at once; their events do not depend on each other.
BRANCH_ATTEMPTS = 30


def pipeline_stream(name: str) -> str:
    return f"pipeline#{name}"


def task_stream(task_id: str) -> str:
    return f"task#{task_id}"


def open_tasks_model(owner: str) -> str:
    return f"tasks-open#{owner}"


class TaskStates(InlineState[TaskState]):
    """The task's state document, plus its owner's open-task entry (`tasks-open#<owner>`, put while
    the task runs and deleted when it ends), both in the append's transaction."""

    def writes(self, stream: str, before: tuple[TaskState, int], after: tuple[TaskState, int]) -> list[Action]:
        own = super().writes(stream, before, after)
        (old, old_version), (new, _) = before, after
        if not new.owner or (old_version and (old.status in FINAL) == (new.status in FINAL)):
            return own
        key = {"model": {"S": open_tasks_model(new.owner)}, "key": {"S": new.task_id}}
        if new.status in FINAL:
            own.append({"Delete": {"TableName": self._table, "Key": key}})
        else:
            summary = {"task_id": new.task_id, "pipeline": new.pipeline, "project": new.project}
            item = {**key, "doc": {"S": json.dumps(summary)}, "revision": {"N": "1"}}
            own.append({"Put": {"TableName": self._table, "Item": item}})
        return own


def task_states(client: Any, read_models_table: str, events: EventStore) -> TaskStates:
    return TaskStates(
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
