"""The recorders the contract runs against, each with fresh tables per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lighthouse.events.recorders import DynamoDBRecorder, InMemoryRecorder, Recorder

EVENTS_KEYS = {
    "KeySchema": [{"AttributeName": "stream_id", "KeyType": "HASH"}, {"AttributeName": "version", "KeyType": "RANGE"}],
    "AttributeDefinitions": [
        {"AttributeName": "stream_id", "AttributeType": "S"},
        {"AttributeName": "version", "AttributeType": "N"},
    ],
}
SNAPSHOT_KEYS = {
    "KeySchema": [
        {"AttributeName": "snapshot_id", "KeyType": "HASH"},
        {"AttributeName": "version", "KeyType": "RANGE"},
    ],
    "AttributeDefinitions": [
        {"AttributeName": "snapshot_id", "AttributeType": "S"},
        {"AttributeName": "version", "AttributeType": "N"},
    ],
}


READ_MODEL_KEYS = {
    "KeySchema": [{"AttributeName": "model", "KeyType": "HASH"}, {"AttributeName": "key", "KeyType": "RANGE"}],
    "AttributeDefinitions": [
        {"AttributeName": "model", "AttributeType": "S"},
        {"AttributeName": "key", "AttributeType": "S"},
    ],
}


@dataclass
class Backend:
    name: str
    recorder: Callable[[], Recorder]
    client: Any = None  # the DynamoDB client, for the tables written alongside appends

    def read_models_table(self) -> str:
        name = f"read-models-{uuid.uuid4().hex[:12]}"
        self.client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **READ_MODEL_KEYS)
        return name


def memory() -> Backend:
    return Backend("memory", InMemoryRecorder)


def dynamodb(name: str, client: Any) -> Backend:
    """Fresh events and snapshots tables (as the template defines their keys) on `client`."""

    def recorder() -> Recorder:
        suffix = uuid.uuid4().hex[:12]
        events, snapshots = f"events-{suffix}", f"snapshots-{suffix}"
        client.create_table(TableName=events, BillingMode="PAY_PER_REQUEST", **EVENTS_KEYS)
        client.create_table(TableName=snapshots, BillingMode="PAY_PER_REQUEST", **SNAPSHOT_KEYS)
        return DynamoDBRecorder(client, events, snapshots)

    return Backend(name, recorder, client)
