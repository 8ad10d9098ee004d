"""Writes made in the same transaction as an append, and inline state documents, on every engine:
the embedded cloud and a stock MiniStack (the in-memory recorder keeps no tables and says so)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from lighthouse.clock import FixedClock
from lighthouse.errors import ConcurrencyError
from lighthouse.events import EventStore
from lighthouse.events.command import execute
from lighthouse.events.inline import InlineState
from lighthouse.events.recorders import AlongsideRefused, DynamoDBRecorder
from tests.contract.backends import Backend
from tests.contract.test_event_store import SumFold, _bump, counted


@pytest.fixture
def store(backend: Backend) -> EventStore:
    return EventStore(backend.recorder(), FixedClock())


def _needs_tables(backend: Backend, store: EventStore) -> str:
    if not isinstance(store.recorder, DynamoDBRecorder):
        with pytest.raises(ValueError, match="keeps no tables"):
            store.append("s", [counted(1)], 0, alongside=[{"Put": {"TableName": "t", "Item": {}}}])
        pytest.skip("the in-memory recorder refuses writes alongside an append (checked above)")
    return backend.read_models_table()


def _document(model: str, key: str, table: str, **extra: Any) -> dict[str, Any]:
    return {"TableName": table, "Item": {"model": {"S": model}, "key": {"S": key}, **extra}}


def test_a_write_alongside_is_stored_with_the_event(backend: Backend, store: EventStore) -> None:
    table = _needs_tables(backend, store)

    store.append("s", [counted(1)], 0, alongside=[{"Put": _document("m", "k", table, note={"S": "with it"})}])

    assert [e.version for e in store.load("s")] == [1]
    item = backend.client.get_item(TableName=table, Key={"model": {"S": "m"}, "key": {"S": "k"}})["Item"]
    assert item["note"] == {"S": "with it"}


def test_a_refused_write_alongside_stores_nothing_and_names_itself(backend: Backend, store: EventStore) -> None:
    table = _needs_tables(backend, store)
    check = {
        "ConditionCheck": {
            "TableName": table,
            "Key": {"model": {"S": "m"}, "key": {"S": "absent"}},
            "ConditionExpression": "attribute_exists(#k)",
            "ExpressionAttributeNames": {"#k": "key"},
        }
    }
    put = {"Put": _document("m", "other", table)}

    with pytest.raises(AlongsideRefused) as refused:
        store.append("s", [counted(1)], 0, alongside=[put, check])

    assert refused.value.action is check
    assert store.load("s") == []
    assert "Item" not in backend.client.get_item(TableName=table, Key={"model": {"S": "m"}, "key": {"S": "other"}})


def test_a_lost_race_on_the_stream_is_a_conflict_not_a_refusal(backend: Backend, store: EventStore) -> None:
    table = _needs_tables(backend, store)
    store.append("s", [counted(1)], 0)

    with pytest.raises(ConcurrencyError) as lost:
        store.append("s", [counted(2)], 0, alongside=[{"Put": _document("m", "k", table)}])

    assert not isinstance(lost.value, AlongsideRefused)


def test_an_inline_state_document_stays_equal_to_the_fold_under_racing_writers(
    backend: Backend, store: EventStore
) -> None:
    table = _needs_tables(backend, store)
    fold = SumFold()
    inline = InlineState(backend.client, table, "sums", fold, store)
    start = threading.Barrier(20)
    failures: list[BaseException] = []

    def writer(target: int) -> None:
        start.wait()
        try:
            execute(store, "sum", fold, _bump, target, inline=inline, attempts=50, sleep=lambda s: None)
        except BaseException as error:  # collected: a thread's exception would be lost
            failures.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(1, 21)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    state, version = inline.load("sum")
    assert (state, version) == store.load_state("sum", SumFold())
    assert state == {"total": 20}
    assert [e.version for e in store.load("sum")] == list(range(1, version + 1))
