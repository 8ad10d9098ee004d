"""The event store's contract (after pyeventsourcing's recorder tests), run against every backend:
the in-memory recorder, the embedded cloud's DynamoDB (moto, with the local cloud's atomicity
patches) and a stock DynamoDB-compatible engine that carries no patch of ours (MiniStack, started
by the fixture). Each must refuse a duplicate version, store nothing of a batch with one conflict,
and give 50 racing writers gapless versions with no overwrite."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lighthouse.clock import FixedClock
from lighthouse.errors import ConcurrencyError, PayloadTooLarge, ValidationFailed
from lighthouse.events import EventStore, StoredEvent
from lighthouse.events.command import execute
from lighthouse.events.types import EventDecodeError
from tests.contract.backends import Backend
from tests.events_for_tests import Blob, Counted, Renamed, Written
from tests.helpers import race_appenders


@pytest.fixture
def store(backend: Backend) -> EventStore:
    return EventStore(backend.recorder(), FixedClock(), snapshot_every=5)


def counted(n: int) -> Counted:
    return Counted(n=n)


def numbers(events: list[StoredEvent]) -> list[int]:
    return [e.event.n for e in events if isinstance(e.event, Counted)]


def test_append_then_load_returns_events_in_order_with_versions(store: EventStore) -> None:
    # GIVEN two appends to one stream
    store.append("s", [counted(1)], expected_version=0)
    store.append("s", [counted(2), counted(3)], expected_version=1)
    # WHEN it is loaded, in whole and in part
    loaded = store.load("s")
    # THEN the events come back typed, in order, with gapless versions
    assert [(e.version, e.event) for e in loaded] == [(1, Counted(n=1)), (2, Counted(n=2)), (3, Counted(n=3))]
    assert store.current_version("s") == 3
    assert [e.version for e in store.load("s", from_version=2)] == [2, 3]
    assert [e.version for e in store.load("s", from_version=1, to_version=2)] == [1, 2]


def test_duplicate_version_is_rejected_and_the_first_write_survives(store: EventStore) -> None:
    store.append("s", [Written(writer=1)], expected_version=0)

    with pytest.raises(ConcurrencyError) as raised:
        store.append("s", [Written(writer=2)], expected_version=0)

    assert raised.value.details == {"stream_id": "s", "expected_version": 0}
    assert [e.event for e in store.load("s")] == [Written(writer=1)]


def test_batch_with_one_conflicting_version_stores_nothing(store: EventStore) -> None:
    store.append("s", [counted(1), counted(2)], expected_version=0)

    # versions 2 (taken), 3 and 4 (free): the whole batch must fail
    with pytest.raises(ConcurrencyError):
        store.append("s", [counted(20), counted(30), counted(40)], expected_version=1)

    assert numbers(store.load("s")) == [1, 2]


def test_fifty_concurrent_appenders_produce_gapless_versions_and_no_overwrite(store: EventStore) -> None:
    landed = race_appenders(store, "hot", writers=50)

    loaded = store.load("hot")
    assert [e.version for e in loaded] == list(range(1, 51))
    assert sorted(e.event.writer for e in loaded if isinstance(e.event, Written)) == list(range(50))
    assert sorted(landed) == list(range(50))


def test_empty_negative_oversized_and_too_long_appends_are_rejected_and_store_nothing(store: EventStore) -> None:
    with pytest.raises(ValidationFailed):
        store.append("s", [], expected_version=0)
    with pytest.raises(ValidationFailed):
        store.append("s", [counted(1)], expected_version=-1)
    with pytest.raises(PayloadTooLarge):
        store.append("s", [Blob(blob="x" * 400_000)], expected_version=0)
    with pytest.raises(ValidationFailed):
        store.append("s", [counted(i) for i in range(101)], expected_version=0)

    assert store.load("s") == []


class SumFold:
    name = "sum-v1"
    snapshots = True

    def __init__(self) -> None:
        self.evolved = 0

    def initial(self) -> dict[str, Any]:
        return {"total": 0}

    def evolve(self, state: dict[str, Any], stored: StoredEvent) -> dict[str, Any]:
        self.evolved += 1
        assert isinstance(stored.event, Counted)
        return {"total": state["total"] + stored.event.n}

    def to_snapshot(self, state: dict[str, Any]) -> dict[str, Any]:
        return state

    def from_snapshot(self, data: dict[str, Any]) -> dict[str, Any]:
        return data


def test_load_state_is_the_same_with_and_without_a_snapshot(store: EventStore) -> None:
    # GIVEN seven events (the snapshot interval is five)
    for n in range(1, 8):
        store.append("sum", [counted(n)], expected_version=n - 1)
    # WHEN the state is loaded twice, the second time after an eighth event
    first = SumFold()
    assert store.load_state("sum", first) == ({"total": 28}, 7)
    store.append("sum", [counted(8)], expected_version=7)
    second = SumFold()
    state, version = store.load_state("sum", second)
    # THEN the snapshot taken at 7 was used (one event folded), and the answer equals a full fold
    assert (state, version, second.evolved) == ({"total": 36}, 8, 1)
    unsnapshotted = SumFold()
    unsnapshotted.snapshots = False  # type: ignore[misc]
    assert store.load_state("sum", unsnapshotted) == ({"total": 36}, 8)
    assert unsnapshotted.evolved == 8


def test_a_stream_record_decodes_to_what_load_returns(store: EventStore) -> None:
    stored = store.append("s", [counted(5)], expected_version=0)[0]
    record = {"eventName": "INSERT", "dynamodb": {"NewImage": stored.to_item()}}

    assert StoredEvent.from_stream_record(record) == store.load("s")[0]


def test_an_old_version_is_upcast_on_every_read_path(store: EventStore, backend: Backend) -> None:
    # GIVEN an item written by an older Lighthouse (Renamed at version 1, shaped {"name": ...})
    item = {
        "stream_id": {"S": "old"},
        "version": {"N": "1"},
        "type": {"S": "TEST_RENAMED"},
        "data": {"S": json.dumps({"name": "Report: Q3"})},
        "metadata": {"S": "{}"},
        "event_id": {"S": "e1"},
        "recorded_at": {"N": "1.0"},
    }
    store.recorder.insert("old", [item], expected_version=0, alongside=[])
    # WHEN it is read by load, by a fold, and from a stream record
    expected = Renamed(title="Report", subtitle="Q3")
    assert store.load("old")[0].event == expected
    assert StoredEvent.from_stream_record({"eventName": "INSERT", "dynamodb": {"NewImage": item}}).event == expected  # type: ignore[union-attr]
    # THEN a writer writes the current version, which reads back unchanged
    written = store.append("old", [Renamed(title="A", subtitle="b")], expected_version=1)[0]
    assert written.to_item()["schema_version"] == {"N": "3"}
    assert store.load("old")[1].event == Renamed(title="A", subtitle="b")


def test_a_version_newer_than_this_lighthouse_is_a_clear_error(store: EventStore) -> None:
    item = Counted(n=1)
    stored = store.append("new", [item], expected_version=0)[0].to_item()
    stored = {**stored, "version": {"N": "2"}, "schema_version": {"N": "9"}}
    store.recorder.insert("new", [stored], expected_version=1, alongside=[])

    with pytest.raises(EventDecodeError, match="newer Lighthouse"):
        store.load("new")


def _bump(state: dict[str, Any], command: int) -> list[Counted]:
    return [] if state["total"] >= command else [Counted(n=command - state["total"])]


def test_the_command_path_re_decides_on_the_fresh_state_after_a_lost_race(store: EventStore) -> None:
    # GIVEN a command that raises a total to 10, and a competing writer that slips in one append
    fold = SumFold()
    store.append("c", [counted(4)], expected_version=0)
    held = store.load_state("c", fold)
    store.append("c", [counted(3)], expected_version=1)
    # WHEN the command runs on the state it held (version 1)
    outcome = execute(store, "c", fold, _bump, 10, loaded=held, sleep=lambda seconds: None)
    # THEN it lost the race, re-decided on version 2 (total 7) and appended 3, not 6
    assert numbers(outcome.appended) == [3]
    assert outcome.state == {"total": 10}
    assert numbers(store.load("c")) == [4, 3, 3]
    # and deciding again now that the goal is met appends nothing
    assert execute(store, "c", fold, _bump, 10).appended == []


def test_the_command_path_gives_up_after_its_attempts_with_the_stream_named(store: EventStore) -> None:
    class Contended:
        def __init__(self) -> None:
            self.recorder, self.calls = store.recorder, 0

        def commit(self, *args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            raise ConcurrencyError("lost")

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

    contended = Contended()
    with pytest.raises(ConcurrencyError) as raised:
        execute(contended, "x", SumFold(), _bump, 1, attempts=3, sleep=lambda seconds: None)  # type: ignore[arg-type]
    assert raised.value.details == {"stream_id": "x", "attempts": 3}
    assert contended.calls == 3
