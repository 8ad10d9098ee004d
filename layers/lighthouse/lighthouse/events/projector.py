"""Projections: stream records -> read-model documents, idempotent under replay and duplicates.

Each document remembers, per source stream, the last version it has absorbed. A record at or
below that version is a duplicate and is skipped; a record beyond the next version means records
were missed (a shard was trimmed, a batch was skipped), so the gap is read from the event store
first. Writes are conditional on the document's revision, so two projector invocations racing on
one document cannot both win.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import ClientError

from lighthouse.errors import ConcurrencyError
from lighthouse.events.model import StoredEvent
from lighthouse.events.store import EventStore

MAX_WRITE_ATTEMPTS = 8


class Projection(Protocol):
    name: str

    def handles(self, event: StoredEvent) -> bool: ...

    def document_key(self, event: StoredEvent) -> str: ...

    def apply(self, document: dict[str, Any] | None, event: StoredEvent) -> dict[str, Any] | None: ...


@dataclass
class ReadModelDocument:
    model: str
    key: str
    body: dict[str, Any] | None
    revision: int = 0
    applied: dict[str, int] = field(default_factory=dict)


class ReadModelStore:
    """Read-model documents in one table: partition `model`, sort `key`."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

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

    def list(
        self, model: str, limit: int = 100, start_key: str | None = None
    ) -> tuple[list[ReadModelDocument], str | None]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#m = :m",
            "ExpressionAttributeNames": {"#m": "model"},
            "ExpressionAttributeValues": {":m": {"S": model}},
            "Limit": limit,
        }
        if start_key:
            kwargs["ExclusiveStartKey"] = {"model": {"S": model}, "key": {"S": start_key}}
        page = self._client.query(**kwargs)
        documents = [self._from_item(item) for item in page.get("Items", [])]
        last = page.get("LastEvaluatedKey")
        return [d for d in documents if d.body is not None], (last["key"]["S"] if last else None)

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

    def __init__(self, store: EventStore, read_models: ReadModelStore, projections: Sequence[Projection]) -> None:
        self._store = store
        self._read_models = read_models
        self._projections = list(projections)

    def project(self, events: Iterable[StoredEvent]) -> int:
        """Apply events in order; returns how many (event, projection) pairs changed a document."""
        changed = 0
        for event in events:
            for projection in self._projections:
                if projection.handles(event):
                    changed += self._project_one(projection, event)
        return changed

    def _project_one(self, projection: Projection, event: StoredEvent) -> int:
        key = projection.document_key(event)
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            document = self._read_models.get(projection.name, key)
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
        raise ConcurrencyError(f"read model {projection.name}/{key} kept changing under the projector")
