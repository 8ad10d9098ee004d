"""Projections are idempotent: replayed, duplicated, out-of-order and retried records change nothing."""

from __future__ import annotations

from typing import Any

import pytest

from lighthouse.clock import FixedClock
from lighthouse.events import EventStore, Projector, ReadModelStore, StoredEvent
from tests.conftest import Provisioned
from tests.events_for_tests import Counted, Written


class CounterProjection:
    name = "counters"

    def __init__(self, fail_on: set[int] | None = None) -> None:
        self.fail_on = fail_on or set()

    def handles(self, event: StoredEvent) -> bool:
        return isinstance(event.event, Counted)

    def locate(self, event: StoredEvent) -> tuple[str, str]:
        return self.name, event.stream_id

    def apply(self, document: dict[str, Any] | None, event: StoredEvent) -> dict[str, Any] | None:
        if event.event.n in self.fail_on:
            self.fail_on.discard(event.event.n)
            raise RuntimeError("projection crashed")
        document = document or {"total": 0, "seen": []}
        return {"total": document["total"] + event.event.n, "seen": [*document["seen"], event.version]}


@pytest.fixture
def parts(provisioned: Provisioned) -> tuple[EventStore, ReadModelStore]:
    dynamodb = provisioned.client("dynamodb")
    store = EventStore.dynamodb(
        dynamodb,
        provisioned.name("LIGHTHOUSE_EVENTS_TABLE"),
        provisioned.name("LIGHTHOUSE_SNAPSHOTS_TABLE"),
        FixedClock(),
    )
    return store, ReadModelStore(dynamodb, provisioned.name("LIGHTHOUSE_READ_MODELS_TABLE"))


def appended(store: EventStore, *numbers: int) -> list[StoredEvent]:
    return store.append("c", [Counted(n=n) for n in numbers], expected_version=0)


def test_duplicated_and_replayed_records_change_nothing(parts: tuple[EventStore, ReadModelStore]) -> None:
    store, read_models = parts
    events = appended(store, 1, 2, 3)
    projector = Projector(store, read_models, [CounterProjection()])

    assert projector.project(events) == 3
    before = read_models.get("counters", "c")
    assert projector.project([*events, events[1], events[0]]) == 0
    after = read_models.get("counters", "c")

    assert after.body == {"total": 6, "seen": [1, 2, 3]}
    assert after.revision == before.revision


def test_a_record_after_a_gap_catches_up_from_the_event_store(
    parts: tuple[EventStore, ReadModelStore],
) -> None:
    store, read_models = parts
    events = appended(store, 10, 20, 30)
    projector = Projector(store, read_models, [CounterProjection()])

    projector.project([events[2]])  # versions 1 and 2 were never delivered
    projector.project(events)  # ...and then arrive late

    assert read_models.get("counters", "c").body == {"total": 60, "seen": [1, 2, 3]}


def test_a_crash_mid_batch_then_a_retry_leaves_the_read_model_correct(
    parts: tuple[EventStore, ReadModelStore],
) -> None:
    store, read_models = parts
    events = appended(store, 1, 2, 3, 4)
    projector = Projector(store, read_models, [CounterProjection(fail_on={3})])

    with pytest.raises(RuntimeError):
        projector.project(events)
    assert read_models.get("counters", "c").body == {"total": 3, "seen": [1, 2]}

    projector.project(events)  # the event source retries the whole batch

    assert read_models.get("counters", "c").body == {"total": 10, "seen": [1, 2, 3, 4]}


def test_events_a_projection_does_not_handle_are_ignored(parts: tuple[EventStore, ReadModelStore]) -> None:
    store, read_models = parts
    events = store.append("c", [Written(writer=5)], expected_version=0)

    assert Projector(store, read_models, [CounterProjection()]).project(events) == 0
    assert read_models.get("counters", "c").body is None


def test_stream_records_other_than_inserts_are_not_events() -> None:
    assert StoredEvent.from_stream_record({"eventName": "REMOVE", "dynamodb": {}}) is None
    assert StoredEvent.from_stream_record({"eventName": "INSERT", "dynamodb": {}}) is None


class TallyProjection:
    name = "tallies"

    def handles(self, event: StoredEvent) -> bool:
        return isinstance(event.event, Counted)

    def increments(self, event: StoredEvent) -> dict[str, dict[str, int]]:
        return {"all": {"events": 1, "sum": event.event.n}}


def test_counter_projections_count_each_event_once_across_streams(parts: tuple[EventStore, ReadModelStore]) -> None:
    store, read_models = parts
    first = store.append("a", [Counted(n=2), Counted(n=3)], expected_version=0)
    second = store.append("b", [Counted(n=5)], expected_version=0)
    projector = Projector(store, read_models, [], counters=[TallyProjection()])

    assert projector.project([*first, *second]) == 3
    assert projector.project([*second, *first, first[0]]) == 0  # replayed and duplicated

    assert read_models.counters("tallies", "all") == {"events": 3, "sum": 10}


def test_a_tombstone_expires_and_is_not_listed(parts: tuple[EventStore, ReadModelStore]) -> None:
    _, read_models = parts
    from lighthouse.events.projector import ReadModelDocument

    read_models.put(ReadModelDocument("m", "live", {"x": 1}), expected_revision=0)
    read_models.put(ReadModelDocument("m", "gone", None), expected_revision=0)

    listed, _ = read_models.list("m", limit=None)

    assert [d.key for d in listed] == ["live"]
