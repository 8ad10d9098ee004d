"""Where events are recorded: the small interface the event store needs, and its backends.

The store (`lighthouse.events.store.EventStore`) owns every policy (versions, batch and size
limits, decoding, snapshots, notification); a recorder only stores and fetches items, with the one
guarantee everything rests on: an insert that would reuse a (stream, version) stores nothing and
raises ConcurrencyError, and a batch is all or nothing.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Protocol

from botocore.exceptions import ClientError

from lighthouse.errors import ConcurrencyError

# A write made in the same transaction as an append: one TransactWriteItems action (Put, Update,
# Delete or ConditionCheck), e.g. an inline read-model document or a nonce.
Action = dict[str, Any]


class AlongsideRefused(ConcurrencyError):
    """A write made alongside an append failed its condition; nothing was stored. `action` is the
    one that failed (the caller knows what it meant: a moved document, a used nonce, ...)."""

    def __init__(self, stream_id: str, action: Action, reason: str) -> None:
        super().__init__(f"a write alongside the append to {stream_id!r} was refused: {reason}")
        self.action = action


class Recorder(Protocol):
    def insert(
        self, stream_id: str, items: list[dict[str, Any]], expected_version: int, alongside: list[Action]
    ) -> None:
        """Store the items (DynamoDB item form) if none of their versions exists, and make the
        `alongside` writes, all in one transaction; else nothing."""
        ...

    def select(self, stream_id: str, from_version: int, to_version: int | None) -> list[dict[str, Any]]:
        """Items with from_version <= version (<= to_version), in version order."""
        ...

    def last_version(self, stream_id: str) -> int: ...

    def get_snapshot(self, key: str) -> tuple[int, dict[str, Any]] | None: ...

    def put_snapshot(self, key: str, version: int, state: dict[str, Any], taken_at: float) -> None: ...


def conflict(stream_id: str, expected_version: int) -> ConcurrencyError:
    return ConcurrencyError(
        f"stream {stream_id!r} has moved past version {expected_version}",
        {"stream_id": stream_id, "expected_version": expected_version},
    )


class DynamoDBRecorder:
    """Events table: partition `stream_id`, sort `version`; snapshots table: `snapshot_id`, `version`.

    One event is a conditional PutItem; several are one TransactWriteItems of conditional puts.
    """

    def __init__(self, client: Any, events_table: str, snapshots_table: str) -> None:
        self._client = client
        self._events = events_table
        self._snapshots = snapshots_table

    def insert(
        self, stream_id: str, items: list[dict[str, Any]], expected_version: int, alongside: list[Action]
    ) -> None:
        condition = "attribute_not_exists(version)"
        try:
            if len(items) == 1 and not alongside:
                self._client.put_item(TableName=self._events, Item=items[0], ConditionExpression=condition)
            else:
                puts = [
                    {"Put": {"TableName": self._events, "Item": item, "ConditionExpression": condition}}
                    for item in items
                ]
                self._client.transact_write_items(TransactItems=puts + alongside)
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code == "TransactionCanceledException":
                raise _refusal(stream_id, expected_version, len(items), alongside, error) from error
            if code == "ConditionalCheckFailedException":
                raise conflict(stream_id, expected_version) from error
            raise

    def select(self, stream_id: str, from_version: int, to_version: int | None) -> list[dict[str, Any]]:
        condition = "stream_id = :s AND version >= :v"
        values: dict[str, Any] = {":s": {"S": stream_id}, ":v": {"N": str(from_version)}}
        if to_version is not None:
            condition = "stream_id = :s AND version BETWEEN :v AND :t"
            values[":t"] = {"N": str(to_version)}
        kwargs: dict[str, Any] = {
            "TableName": self._events,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        while True:
            page = self._client.query(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def last_version(self, stream_id: str) -> int:
        page = self._client.query(
            TableName=self._events,
            KeyConditionExpression="stream_id = :s",
            ExpressionAttributeValues={":s": {"S": stream_id}},
            ProjectionExpression="version",
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = page.get("Items", [])
        return int(items[0]["version"]["N"]) if items else 0

    def get_snapshot(self, key: str) -> tuple[int, dict[str, Any]] | None:
        page = self._client.query(
            TableName=self._snapshots,
            KeyConditionExpression="snapshot_id = :k",
            ExpressionAttributeValues={":k": {"S": key}},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        if not page.get("Items"):
            return None
        item = page["Items"][0]
        return int(item["version"]["N"]), json.loads(item["state"]["S"])

    def put_snapshot(self, key: str, version: int, state: dict[str, Any], taken_at: float) -> None:
        self._client.put_item(
            TableName=self._snapshots,
            Item={
                "snapshot_id": {"S": key},
                "version": {"N": str(version)},
                "state": {"S": json.dumps(state, sort_keys=True)},
                "taken_at": {"N": repr(taken_at)},
            },
        )


def _refusal(
    stream_id: str, expected_version: int, events: int, alongside: list[Action], error: ClientError
) -> ConcurrencyError:
    """Which write cancelled the transaction: an event (the stream moved) or one alongside it."""
    response: dict[str, Any] = dict(error.response)
    reasons: list[dict[str, Any]] = list(response.get("CancellationReasons", []))
    for index, reason in enumerate(reasons):
        if reason.get("Code") != "ConditionalCheckFailed":
            continue
        if index < events:
            break  # the stream moved: that explains the rest
        if index - events < len(alongside):
            return AlongsideRefused(stream_id, alongside[index - events], "ConditionalCheckFailed")
    return conflict(stream_id, expected_version)


class InMemoryRecorder:
    """The same contract in a dict, for unit tests of services (the contract suite covers both).
    It keeps events and snapshots only: writes alongside an append belong to DynamoDB tables."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[str, dict[int, dict[str, Any]]] = {}
        self._snapshots: dict[str, tuple[int, dict[str, Any]]] = {}

    def insert(
        self, stream_id: str, items: list[dict[str, Any]], expected_version: int, alongside: list[Action]
    ) -> None:
        if alongside:
            raise ValueError("the in-memory recorder keeps no tables to write alongside an append")
        with self._lock:
            stream = self._streams.setdefault(stream_id, {})
            versions = [int(item["version"]["N"]) for item in items]
            if any(version in stream for version in versions) or len(set(versions)) != len(versions):
                raise conflict(stream_id, expected_version)
            for version, item in zip(versions, items, strict=True):
                stream[version] = json.loads(json.dumps(item))

    def select(self, stream_id: str, from_version: int, to_version: int | None) -> list[dict[str, Any]]:
        with self._lock:
            stream = self._streams.get(stream_id, {})
            last = to_version if to_version is not None else max(stream, default=0)
            return [stream[v] for v in sorted(stream) if from_version <= v <= last]

    def last_version(self, stream_id: str) -> int:
        with self._lock:
            return max(self._streams.get(stream_id, {}), default=0)

    def get_snapshot(self, key: str) -> tuple[int, dict[str, Any]] | None:
        with self._lock:
            snapshot = self._snapshots.get(key)
            return (snapshot[0], json.loads(json.dumps(snapshot[1]))) if snapshot else None

    def put_snapshot(self, key: str, version: int, state: dict[str, Any], taken_at: float) -> None:
        with self._lock:
            self._snapshots[key] = (version, json.loads(json.dumps(state)))
