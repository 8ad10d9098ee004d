"""Append-only event streams with optimistic concurrency, and transparent snapshots."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar

from botocore.exceptions import ClientError

from lighthouse.clock import Clock, SystemClock
from lighthouse.errors import ConcurrencyError, PayloadTooLarge, ValidationFailed
from lighthouse.events.model import MAX_EVENT_BYTES, NewEvent, StoredEvent
from lighthouse.notify import notifier, stream_topic

S = TypeVar("S")

# TransactWriteItems takes at most 100 actions.
MAX_BATCH = 100


class Reducer(Protocol, Generic[S]):
    """Folds a stream into a state; snapshots are stored per reducer name and schema version."""

    name: str

    def initial(self) -> S: ...

    def apply(self, state: S, event: StoredEvent) -> S: ...

    def to_snapshot(self, state: S) -> dict[str, Any]: ...

    def from_snapshot(self, data: dict[str, Any]) -> S: ...


class EventStore:
    """Streams keyed by id, events ordered by a gapless version starting at 1.

    Parameters
    ----------
    client:
        A boto3 DynamoDB client (injected so tests and the local cloud choose the endpoint).
    snapshot_every:
        A snapshot is written when loading finds at least this many events after the last one.
    """

    def __init__(
        self,
        client: Any,
        events_table: str,
        snapshots_table: str,
        clock: Clock | None = None,
        snapshot_every: int = 1000,
    ) -> None:
        self._client = client
        self._events_table = events_table
        self._snapshots_table = snapshots_table
        self._clock = clock or SystemClock()
        self.snapshot_every = snapshot_every

    def append(self, stream_id: str, events: Sequence[NewEvent], expected_version: int) -> list[StoredEvent]:
        """Append events after `expected_version` (0 for a new stream), all or nothing.

        Raises
        ------
        ConcurrencyError
            Another writer already holds one of the versions; nothing was stored.
        """
        if not events:
            raise ValidationFailed("append needs at least one event")
        if len(events) > MAX_BATCH:
            raise ValidationFailed(f"at most {MAX_BATCH} events per append, got {len(events)}")
        if expected_version < 0:
            raise ValidationFailed("expected_version must be >= 0")
        now = self._clock.now()
        stored = [
            StoredEvent(
                stream_id=stream_id,
                version=expected_version + offset,
                type=event.type,
                data=event.data,
                metadata=event.metadata,
                event_id=uuid.uuid4().hex,
                recorded_at=now,
            )
            for offset, event in enumerate(events, start=1)
        ]
        items = [event.to_item() for event in stored]
        for item in items:
            size = len(item["data"]["S"]) + len(item["metadata"]["S"])
            if size > MAX_EVENT_BYTES:
                raise PayloadTooLarge(f"event larger than {MAX_EVENT_BYTES} bytes", {"bytes": size})
        if len(items) == 1:
            self._put_one(stream_id, items[0], expected_version)
        else:
            self._put_batch(stream_id, items, expected_version)
        notifier.notify(stream_topic(stream_id))
        return stored

    def _put_one(self, stream_id: str, item: dict[str, Any], expected_version: int) -> None:
        try:
            self._client.put_item(
                TableName=self._events_table,
                Item=item,
                ConditionExpression="attribute_not_exists(version)",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise self._conflict(stream_id, expected_version) from error
            raise

    def _put_batch(self, stream_id: str, items: list[dict[str, Any]], expected_version: int) -> None:
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._events_table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(version)",
                }
            }
            for item in items
        ]
        try:
            self._client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            if error.response["Error"]["Code"] == "TransactionCanceledException":
                raise self._conflict(stream_id, expected_version) from error
            raise

    @staticmethod
    def _conflict(stream_id: str, expected_version: int) -> ConcurrencyError:
        return ConcurrencyError(
            f"stream {stream_id!r} has moved past version {expected_version}",
            {"stream_id": stream_id, "expected_version": expected_version},
        )

    def load(self, stream_id: str, from_version: int = 1, to_version: int | None = None) -> list[StoredEvent]:
        """Events of a stream with from_version <= version (<= to_version), in order."""
        condition = "stream_id = :s AND version >= :v"
        values: dict[str, Any] = {":s": {"S": stream_id}, ":v": {"N": str(from_version)}}
        if to_version is not None:
            condition = "stream_id = :s AND version BETWEEN :v AND :t"
            values[":t"] = {"N": str(to_version)}
        kwargs: dict[str, Any] = {
            "TableName": self._events_table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }
        events: list[StoredEvent] = []
        while True:
            page = self._client.query(**kwargs)
            events.extend(StoredEvent.from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return events
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def current_version(self, stream_id: str) -> int:
        page = self._client.query(
            TableName=self._events_table,
            KeyConditionExpression="stream_id = :s",
            ExpressionAttributeValues={":s": {"S": stream_id}},
            ProjectionExpression="version",
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = page.get("Items", [])
        return int(items[0]["version"]["N"]) if items else 0

    def load_state(self, stream_id: str, reducer: Reducer[S]) -> tuple[S, int]:
        """Fold a stream with `reducer`, starting from its latest snapshot; returns (state, version)."""
        snapshot_key = f"{stream_id}#{reducer.name}"
        state, version = reducer.initial(), 0
        page = self._client.query(
            TableName=self._snapshots_table,
            KeyConditionExpression="snapshot_id = :k",
            ExpressionAttributeValues={":k": {"S": snapshot_key}},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        if page.get("Items"):
            item = page["Items"][0]
            state = reducer.from_snapshot(json.loads(item["state"]["S"]))
            version = int(item["version"]["N"])
        snapshot_version = version
        for event in self.load(stream_id, from_version=version + 1):
            state = reducer.apply(state, event)
            version = event.version
        if version - snapshot_version >= self.snapshot_every:
            self._client.put_item(
                TableName=self._snapshots_table,
                Item={
                    "snapshot_id": {"S": snapshot_key},
                    "version": {"N": str(version)},
                    "state": {"S": json.dumps(reducer.to_snapshot(state), sort_keys=True)},
                    "taken_at": {"N": repr(self._clock.now())},
                },
            )
        return state, version
