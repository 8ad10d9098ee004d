"""Event shapes and their DynamoDB item form."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from lighthouse.errors import LighthouseError

# DynamoDB's item limit is 400 KB; keys and bookkeeping need room too.
MAX_EVENT_BYTES = 350 * 1024

_deserializer = TypeDeserializer()


class PoisonRecord(LighthouseError):
    """A record that will never be processed, whatever the number of retries."""

    code = "POISON_RECORD"


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
        """The event inside a DynamoDB Streams record, or None for records that are not appends.

        An image that is not an event (a missing key, data that is not JSON) is a PoisonRecord:
        reading it again will not help.
        """
        if record.get("eventName") != "INSERT":
            return None
        image = record.get("dynamodb", {}).get("NewImage")
        if not image:
            return None
        try:
            event = cls.from_item(image)
        except (KeyError, ValueError, TypeError, AttributeError) as error:
            raise PoisonRecord(f"stream record is not a readable event: {type(error).__name__}: {error}") from error
        if not isinstance(event.data, dict) or not isinstance(event.metadata, dict):
            raise PoisonRecord("stream record's data or metadata is not a JSON object")
        return event
