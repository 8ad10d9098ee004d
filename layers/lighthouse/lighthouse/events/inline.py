"""Inline state documents: a fold's state of each stream, kept in a read-model document that is
written in the same transaction as every append to the stream.

Loading a stream is then one GetItem instead of a snapshot lookup and a query, and whoever wrote
reads its own write at once (GET /tasks right after a stage). The document's revision is the
stream's version and every write is conditional on the revision it was loaded at, so the document
cannot disagree with the stream. A state too large for one item is marked as such and loaded from
the stream instead (correct, only slower).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from lighthouse.events.recorders import Action
from lighthouse.events.store import EventStore, Fold

S = TypeVar("S")

# DynamoDB items hold 400 KB; leave room for the keys and the other attributes.
MAX_STATE_BYTES = 350_000


class InlineState(Generic[S]):
    """An `Inline[S]` for the command path: documents `<model>/<key_of(stream)>`."""

    def __init__(
        self,
        client: Any,
        table: str,
        model: str,
        fold: Fold[S],
        store: EventStore,
        key_of: Callable[[str], str] = lambda stream: stream,
    ) -> None:
        self._client = client
        self._table = table
        self.model = model
        self._fold = fold
        self._store = store
        self._key_of = key_of

    def key(self, stream: str) -> dict[str, Any]:
        return {"model": {"S": self.model}, "key": {"S": self._key_of(stream)}}

    def load(self, stream: str) -> tuple[S, int]:
        item = self._client.get_item(TableName=self._table, Key=self.key(stream), ConsistentRead=True).get("Item")
        if not item or "doc" not in item:
            # No document (a stream written before this read model existed, or none at all), or a
            # state too large for one item: the stream is the record.
            return self._store.load_state(stream, self._fold)
        return self._fold.from_snapshot(json.loads(item["doc"]["S"])), int(item["revision"]["N"])

    def writes(self, stream: str, before: tuple[S, int], after: tuple[S, int]) -> list[Action]:
        return [{"Put": self.put(stream, after[0], after[1], before[1])}]

    def put(self, stream: str, state: S, version: int, loaded_at: int) -> dict[str, Any]:
        """The document's Put, conditional on it still being at `loaded_at` (absent when 0)."""
        doc = json.dumps(self._fold.to_snapshot(state), sort_keys=True)
        item: dict[str, Any] = {
            **self.key(stream),
            "revision": {"N": str(version)},
            "applied": {"S": json.dumps({stream: version})},
        }
        if len(doc) <= MAX_STATE_BYTES:
            item["doc"] = {"S": doc}
        put: dict[str, Any] = {"TableName": self._table, "Item": item}
        if loaded_at == 0:
            put["ConditionExpression"] = "attribute_not_exists(#k)"
            put["ExpressionAttributeNames"] = {"#k": "key"}
        else:
            # Absent: a stream older than its document (the append's own condition still decides).
            put["ConditionExpression"] = "attribute_not_exists(#k) OR revision = :v"
            put["ExpressionAttributeNames"] = {"#k": "key"}
            put["ExpressionAttributeValues"] = {":v": {"N": str(loaded_at)}}
        return put
