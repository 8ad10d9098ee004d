"""Where runs live: stream ids, the inline state documents, and the run indexes.

Each run's state document (`runs/<id>`) is written with every append to its stream, and so are its
index entries: `runs-by-time` and `runs-by-job#<job>` (key `<launched_at>#<run_id>`, with the run's
status as an attribute), in the same transaction. Listing runs and "since the last success" are
then queries on an index, newest first, never a scan.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from lighthouse.events import EventStore
from lighthouse.events.inline import InlineState
from lighthouse.events.model import StoredEvent
from lighthouse.events.recorders import Action
from lighthouse.events.types import Event
from lighthouse.runs.logic import DIRECTIVE_FOLD, RUN_FOLD, summary
from lighthouse.runs.models import AllowlistEntry, DirectiveState, RunState, RunSummary

RUNS_MODEL = "runs"
DIRECTIVES_MODEL = "run-directives"
ALLOWLIST_MODEL = "run-allowlist"
BY_TIME = "runs-by-time"
BY_JOB = "runs-by-job#"
ALLOWLIST_STREAM = "allowlist#containers"


def run_stream(run_id: str) -> str:
    return f"run#{run_id}"


def directive_stream(directive_id: str) -> str:
    return f"directive#{directive_id}"


def index_key(state: RunState | RunSummary) -> str:
    return f"{state.launched_at:017.6f}#{state.run_id}"


def index_items(run: RunSummary) -> list[dict[str, Any]]:
    """The run's entries in `runs-by-time` and in each of its jobs' `runs-by-job#<job>`."""
    document = run.model_dump_json()
    partitions = [BY_TIME, *(BY_JOB + job for job in dict.fromkeys(run.jobs))]
    return [
        {
            "model": {"S": partition},
            "key": {"S": index_key(run)},
            "status": {"S": run.status},
            "revision": {"N": "1"},
            "doc": {"S": document},
        }
        for partition in partitions
    ]


class RunStates:
    """The run's state document plus its index entries, written in the append's transaction."""

    def __init__(self, client: Any, table: str, events: EventStore) -> None:
        self._client = client
        self._table = table
        self.inline = InlineState(client, table, RUNS_MODEL, RUN_FOLD, events, key_of=lambda s: s.removeprefix("run#"))

    def load(self, stream: str) -> tuple[RunState, int]:
        return self.inline.load(stream)

    def writes(self, stream: str, before: tuple[RunState, int], after: tuple[RunState, int]) -> list[Action]:
        own = self.inline.writes(stream, before, after)
        state = after[0]
        if before[1] and before[0].status == state.status and before[0].ended_at == state.ended_at:
            return own
        own.extend({"Put": {"TableName": self._table, "Item": item}} for item in index_items(summary(state)))
        return own

    def newest_first(
        self, job: str | None, status: str | None = None, page_size: int = 100, start: str | None = None
    ) -> Iterator[tuple[RunSummary, str]]:
        """Runs from the newest, from one index (a job's, or all), with their index key."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#m = :m",
            "ExpressionAttributeNames": {"#m": "model"},
            "ExpressionAttributeValues": {":m": {"S": BY_JOB + job if job else BY_TIME}},
            "ScanIndexForward": False,
            "Limit": page_size,
        }
        if status:
            kwargs["FilterExpression"] = "#s = :s"
            kwargs["ExpressionAttributeNames"]["#s"] = "status"
            kwargs["ExpressionAttributeValues"][":s"] = {"S": status}
        if start:
            kwargs["ExclusiveStartKey"] = {"model": kwargs["ExpressionAttributeValues"][":m"], "key": {"S": start}}
        while True:
            page = self._client.query(**kwargs)
            for item in page.get("Items", []):
                yield RunSummary.model_validate_json(item["doc"]["S"]), item["key"]["S"]
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def directive_states(client: Any, table: str, events: EventStore) -> InlineState[DirectiveState]:
    return InlineState(
        client, table, DIRECTIVES_MODEL, DIRECTIVE_FOLD, events, key_of=lambda s: s.removeprefix("directive#")
    )


# ---- the allowlist: one stream, each change the whole list ------------------------------------


class AllowlistSet(Event):
    TYPE: ClassVar[str] = "RUN_ALLOWLIST_SET"

    entries: list[dict[str, Any]]
    by: str
    at: float


class AllowlistState(BaseModel):
    entries: list[AllowlistEntry] = Field(default_factory=list)
    updated_at: float | None = None
    updated_by: str | None = None

    def entry(self, container_id: str) -> AllowlistEntry | None:
        return next((e for e in self.entries if e.container_id == container_id), None)


class AllowlistFold:
    name = "run-allowlist-v1"
    snapshots = False

    def initial(self) -> AllowlistState:
        return AllowlistState()

    def evolve(self, state: AllowlistState, stored: StoredEvent) -> AllowlistState:
        event = stored.event
        if isinstance(event, AllowlistSet):
            entries = [AllowlistEntry.model_validate(e) for e in event.entries]
            return AllowlistState(entries=entries, updated_at=event.at, updated_by=event.by)
        return state

    def to_snapshot(self, state: AllowlistState) -> dict[str, Any]:
        return state.model_dump(mode="json")

    def from_snapshot(self, data: dict[str, Any]) -> AllowlistState:
        return AllowlistState.model_validate(data)


ALLOWLIST_FOLD = AllowlistFold()


def set_allowlist(state: AllowlistState, command: AllowlistSet) -> list[Event]:
    current = [e.model_dump() for e in state.entries]
    return [] if json.dumps(current, sort_keys=True) == json.dumps(command.entries, sort_keys=True) else [command]


def allowlist_states(client: Any, table: str, events: EventStore) -> InlineState[AllowlistState]:
    return InlineState(client, table, ALLOWLIST_MODEL, ALLOWLIST_FOLD, events, key_of=lambda s: "current")
