"""Projections: stream records -> read-model documents, idempotent under replay and duplicates.

Each document remembers, per source stream, the last version it has absorbed. A record at or
below that version is a duplicate and is skipped; a record beyond the next version means records
were missed (a shard was trimmed, a batch was skipped), so the gap is read from the event store
first. Writes are conditional on the document's revision, so two projector invocations racing on
one document cannot both win.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import ClientError

from lighthouse.errors import ConcurrencyError
from lighthouse.events.model import StoredEvent
from lighthouse.events.store import EventStore
from lighthouse.events.types import Event
from lighthouse.notify import model_topic, notifier

MAX_WRITE_ATTEMPTS = 8


class Projection(Protocol):
    """A read model made of documents; `locate` names the (partition, key) an event changes."""

    name: str
    events: tuple[type[Event], ...]  # the event types it reads

    def handles(self, event: StoredEvent) -> bool: ...

    def locate(self, event: StoredEvent) -> tuple[str, str]: ...

    def apply(self, document: dict[str, Any] | None, event: StoredEvent) -> dict[str, Any] | None: ...


class CounterProjection(Protocol):
    """A read model of counters summed over many streams (metrics).

    A document that absorbs every stream cannot remember each stream's version, so each
    (stream, version) applied leaves a marker row, written in the same transaction as the increments.
    """

    name: str
    events: tuple[type[Event], ...]  # the event types it reads

    def handles(self, event: StoredEvent) -> bool: ...

    def increments(self, event: StoredEvent) -> dict[str, dict[str, int]]:
        """{document key: {counter: delta}} for this event."""
        ...


@dataclass
class ReadModelDocument:
    model: str
    key: str
    body: dict[str, Any] | None
    revision: int = 0
    applied: dict[str, int] = field(default_factory=dict)


# Stream records live 24 h; tombstones and markers outlive any replay with a margin.
TOMBSTONE_TTL_SECONDS = 3 * 86400


class ReadModelStore:
    """Read-model documents in one table: partition `model`, sort `key`."""

    def __init__(self, client: Any, table: str, now: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table
        self._now = now

    def get(self, model: str, key: str) -> ReadModelDocument:
        response = self._client.get_item(
            TableName=self._table,
            Key={"model": {"S": model}, "key": {"S": key}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        if not item:
            return ReadModelDocument(model=model, key=key, body=None)
        return self._from_item(item)

    def put(self, document: ReadModelDocument, expected_revision: int) -> None:
        item: dict[str, Any] = {
            "model": {"S": document.model},
            "key": {"S": document.key},
            "revision": {"N": str(expected_revision + 1)},
            "applied": {"S": json.dumps(document.applied, sort_keys=True)},
        }
        if document.body is not None:
            item["doc"] = {"S": json.dumps(document.body, sort_keys=True)}
        else:
            item["expires_at"] = {"N": str(int(self._now()) + TOMBSTONE_TTL_SECONDS)}
        if expected_revision == 0:
            condition, values = "attribute_not_exists(#k)", None
        else:
            condition, values = "revision = :r", {":r": {"N": str(expected_revision)}}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Item": item,
            "ConditionExpression": condition,
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        else:
            kwargs["ExpressionAttributeNames"] = {"#k": "key"}
        try:
            self._client.put_item(**kwargs)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConcurrencyError(f"read model {document.model}/{document.key} changed") from error
            raise
        notifier.notify(model_topic(document.model))

    def list(
        self, model: str, limit: int | None = 100, start_key: str | None = None
    ) -> tuple[list[ReadModelDocument], str | None]:
        """Live documents of a partition in key order (tombstones are skipped), and the next start key."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#m = :m",
            "FilterExpression": "attribute_exists(doc)",
            "ExpressionAttributeNames": {"#m": "model"},
            "ExpressionAttributeValues": {":m": {"S": model}},
        }
        if limit is not None:
            kwargs["Limit"] = limit
        if start_key:
            kwargs["ExclusiveStartKey"] = {"model": {"S": model}, "key": {"S": start_key}}
        documents: list[ReadModelDocument] = []
        while True:
            page = self._client.query(**kwargs)
            documents.extend(self._from_item(item) for item in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if limit is not None or not last:
                return documents, (last["key"]["S"] if last else None)
            kwargs["ExclusiveStartKey"] = last

    def counters(self, model: str, key: str) -> dict[str, int]:
        item = self._client.get_item(
            TableName=self._table, Key={"model": {"S": model}, "key": {"S": key}}, ConsistentRead=True
        ).get("Item", {})
        return {name[2:]: int(value["N"]) for name, value in item.items() if name.startswith("c_")}

    def add_counters(self, model: str, increments: dict[str, dict[str, int]], marker: str) -> bool:
        """Apply increments and leave `marker`, atomically; False if the marker was already there."""
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {
                        "model": {"S": f"{model}#applied"},
                        "key": {"S": marker},
                        "expires_at": {"N": str(int(self._now()) + TOMBSTONE_TTL_SECONDS)},
                    },
                    "ConditionExpression": "attribute_not_exists(#k)",
                    "ExpressionAttributeNames": {"#k": "key"},
                }
            }
        ]
        for key, counters in increments.items():
            names = {f"#c{i}": f"c_{name}" for i, name in enumerate(counters)}
            values = {f":v{i}": {"N": str(delta)} for i, delta in enumerate(counters.values())}
            actions.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": {"model": {"S": model}, "key": {"S": key}},
                        "UpdateExpression": "ADD " + ", ".join(f"#c{i} :v{i}" for i in range(len(counters))),
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": values,
                    }
                }
            )
        try:
            self._client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            if error.response["Error"]["Code"] == "TransactionCanceledException":
                reasons = error.response.get("CancellationReasons", [])
                if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                    return False
                raise ConcurrencyError(f"counters of {model} changed concurrently") from error
            raise
        return True

    @staticmethod
    def _from_item(item: dict[str, Any]) -> ReadModelDocument:
        return ReadModelDocument(
            model=item["model"]["S"],
            key=item["key"]["S"],
            body=json.loads(item["doc"]["S"]) if "doc" in item else None,
            revision=int(item["revision"]["N"]),
            applied={k: int(v) for k, v in json.loads(item["applied"]["S"]).items()},
        )


class Projector:
    """Applies stored events to every projection that handles them."""

    def __init__(
        self,
        store: EventStore,
        read_models: ReadModelStore,
        projections: Sequence[Projection],
        counters: Sequence[CounterProjection] = (),
    ) -> None:
        self._store = store
        self._read_models = read_models
        self._projections = list(projections)
        self._counters = list(counters)

    def project(self, events: Iterable[StoredEvent]) -> int:
        """Apply events in order; returns how many (event, projection) pairs changed a read model."""
        changed = 0
        for event in events:
            for projection in self._projections:
                if projection.handles(event):
                    changed += self._project_one(projection, event)
            for counter in self._counters:
                if counter.handles(event):
                    changed += self._count_one(counter, event)
        return changed

    def _count_one(self, projection: CounterProjection, event: StoredEvent) -> int:
        increments = projection.increments(event)
        if not increments:
            return 0
        marker = f"{event.stream_id}#{event.version}"
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            try:
                return int(self._read_models.add_counters(projection.name, increments, marker))
            except ConcurrencyError:
                continue
        raise ConcurrencyError(f"counters of {projection.name} kept changing under the projector")

    def _project_one(self, projection: Projection, event: StoredEvent) -> int:
        partition, key = projection.locate(event)
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            document = self._read_models.get(partition, key)
            applied = document.applied.get(event.stream_id, 0)
            if event.version <= applied:
                return 0
            pending = [event]
            if event.version > applied + 1:
                missing = self._store.load(event.stream_id, applied + 1, event.version - 1)
                pending = [e for e in missing if projection.handles(e)] + [event]
            body = document.body
            for item in pending:
                body = projection.apply(body, item)
            expected = document.revision
            document.body = body
            document.applied[event.stream_id] = event.version
            try:
                self._read_models.put(document, expected_revision=expected)
            except ConcurrencyError:
                continue
            return 1
        raise ConcurrencyError(f"read model {partition}/{key} kept changing under the projector")
