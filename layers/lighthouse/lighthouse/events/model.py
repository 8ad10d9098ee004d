"""Event shapes and their DynamoDB item form."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

# DynamoDB's item limit is 400 KB; keys and bookkeeping need room too.
MAX_EVENT_BYTES = 350 * 1024

_deserializer = TypeDeserializer()


@dataclass(frozen=True)
class NewEvent:
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredEvent:
    stream_id: str
    version: int
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    event_id: str
    recorded_at: float

    def to_item(self) -> dict[str, Any]:
        return {
            "stream_id": {"S": self.stream_id},
            "version": {"N": str(self.version)},
            "type": {"S": self.type},
            "data": {"S": json.dumps(self.data, separators=(",", ":"), sort_keys=True)},
            "metadata": {"S": json.dumps(self.metadata, separators=(",", ":"), sort_keys=True)},
            "event_id": {"S": self.event_id},
            "recorded_at": {"N": repr(self.recorded_at)},
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> StoredEvent:
        plain = {key: _deserializer.deserialize(value) for key, value in item.items()}
        return cls(
            stream_id=str(plain["stream_id"]),
            version=int(plain["version"]),
            type=str(plain["type"]),
            data=json.loads(plain["data"]),
            metadata=json.loads(plain.get("metadata") or "{}"),
            event_id=str(plain["event_id"]),
            recorded_at=float(plain["recorded_at"]),
        )

    @classmethod
    def from_stream_record(cls, record: dict[str, Any]) -> StoredEvent | None:
        """The event inside a DynamoDB Streams record, or None for records that are not appends."""
        if record.get("eventName") != "INSERT":
            return None
        image = record.get("dynamodb", {}).get("NewImage")
        if not image:
            return None
        return cls.from_item(image)
