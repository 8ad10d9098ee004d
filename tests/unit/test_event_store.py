"""Event store contract (after pyeventsourcing's recorder tests), against the emulated DynamoDB."""

from __future__ import annotations

from typing import Any

import pytest

from lighthouse.clock import FixedClock
from lighthouse.errors import ConcurrencyError, PayloadTooLarge, ValidationFailed
from lighthouse.events import EventStore, NewEvent, StoredEvent
from tests.conftest import Provisioned
from tests.helpers import race_appenders


@pytest.fixture
def store(provisioned: Provisioned) -> EventStore:
    return EventStore(
        provisioned.client("dynamodb"),
        provisioned.name("LIGHTHOUSE_EVENTS_TABLE"),
        provisioned.name("LIGHTHOUSE_SNAPSHOTS_TABLE"),
        FixedClock(),
        snapshot_every=5,
    )


def event(n: int) -> NewEvent:
    return NewEvent("COUNTED", {"n": n})


def test_append_then_load_returns_events_in_order_with_versions(store: EventStore) -> None:
    store.append("s", [event(1)], expected_version=0)
    store.append("s", [event(2), event(3)], expected_version=1)

    loaded = store.load("s")

    assert [(e.version, e.data["n"]) for e in loaded] == [(1, 1), (2, 2), (3, 3)]
    assert store.current_version("s") == 3
    assert [e.version for e in store.load("s", from_version=2)] == [2, 3]
    assert [e.version for e in store.load("s", from_version=1, to_version=2)] == [1, 2]


def test_duplicate_version_is_rejected_and_the_first_write_survives(store: EventStore) -> None:
    store.append("s", [NewEvent("A", {"who": "first"})], expected_version=0)

    with pytest.raises(ConcurrencyError) as raised:
        store.append("s", [NewEvent("A", {"who": "second"})], expected_version=0)

    assert raised.value.details == {"stream_id": "s", "expected_version": 0}
    assert [e.data["who"] for e in store.load("s")] == ["first"]


def test_batch_with_one_conflicting_version_stores_nothing(store: EventStore) -> None:
    store.append("s", [event(1), event(2)], expected_version=0)

    # versions 2 (taken), 3 and 4 (free): the whole batch must fail
    with pytest.raises(ConcurrencyError):
        store.append("s", [event(20), event(30), event(40)], expected_version=1)

    assert [e.data["n"] for e in store.load("s")] == [1, 2]


def test_fifty_concurrent_appenders_produce_gapless_versions_and_no_overwrite(store: EventStore) -> None:
    landed = race_appenders(store, "hot", writers=50)

    loaded = store.load("hot")
    assert [e.version for e in loaded] == list(range(1, 51))
    assert sorted(e.data["writer"] for e in loaded) == list(range(50))
    assert sorted(landed) == list(range(50))


def test_empty_negative_and_oversized_appends_are_rejected_and_store_nothing(store: EventStore) -> None:
    with pytest.raises(ValidationFailed):
        store.append("s", [], expected_version=0)
    with pytest.raises(ValidationFailed):
        store.append("s", [event(1)], expected_version=-1)
    with pytest.raises(PayloadTooLarge):
        store.append("s", [NewEvent("BIG", {"blob": "x" * 400_000})], expected_version=0)
    with pytest.raises(ValidationFailed):
        store.append("s", [event(i) for i in range(101)], expected_version=0)

    assert store.load("s") == []


class SumReducer:
    name = "sum-v1"

    def __init__(self) -> None:
        self.applied = 0

    def initial(self) -> dict[str, Any]:
        return {"total": 0}

    def apply(self, state: dict[str, Any], stored: StoredEvent) -> dict[str, Any]:
        self.applied += 1
        return {"total": state["total"] + stored.data["n"]}

    def to_snapshot(self, state: dict[str, Any]) -> dict[str, Any]:
        return state

    def from_snapshot(self, data: dict[str, Any]) -> dict[str, Any]:
        return data


def test_snapshots_are_taken_every_n_events_and_used_when_loading(store: EventStore, provisioned: Provisioned) -> None:
    for n in range(1, 8):
        store.append("sum", [event(n)], expected_version=n - 1)

    first = SumReducer()
    state, version = store.load_state("sum", first)
    assert (state, version, first.applied) == ({"total": 28}, 7, 7)

    snapshots = provisioned.client("dynamodb").scan(TableName=provisioned.name("LIGHTHOUSE_SNAPSHOTS_TABLE"))
    assert [(i["snapshot_id"]["S"], i["version"]["N"]) for i in snapshots["Items"]] == [("sum#sum-v1", "7")]

    store.append("sum", [event(8)], expected_version=7)
    second = SumReducer()
    state, version = store.load_state("sum", second)
    # Only the event after the snapshot was folded.
    assert (state, version, second.applied) == ({"total": 36}, 8, 1)


def test_default_snapshot_interval_is_1000(provisioned: Provisioned) -> None:
    from lighthouse.config import Settings

    assert Settings().snapshot_every == 1000
