"""A stored event (a typed event in its stream, at its version) and its DynamoDB item form."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from lighthouse.errors import LighthouseError
from lighthouse.events.types import Event, EventDecodeError, decode, encode

# DynamoDB's item limit is 400 KB; keys and bookkeeping need room too.
MAX_EVENT_BYTES = 350 * 1024

_deserializer = TypeDeserializer()


class PoisonRecord(LighthouseError):
    """A record that will never be processed, whatever the number of retries."""

    code = "POISON_RECORD"


@dataclass(frozen=True)
class StoredEvent:
    stream_id: str
    version: int
    event: Event
    event_id: str
    recorded_at: float
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return self.event.TYPE

    def to_item(self) -> dict[str, Any]:
        type_name, schema_version, data = encode(self.event)
        item = {
            "stream_id": {"S": self.stream_id},
            "version": {"N": str(self.version)},
            "type": {"S": type_name},
            "data": {"S": json.dumps(data, separators=(",", ":"), sort_keys=True, allow_nan=False)},
            "metadata": {"S": json.dumps(self.metadata, separators=(",", ":"), sort_keys=True, allow_nan=False)},
            "event_id": {"S": self.event_id},
            "recorded_at": {"N": repr(self.recorded_at)},
        }
        if schema_version > 1:  # absent means 1, so history written before versions existed reads as v1
            item["schema_version"] = {"N": str(schema_version)}
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> StoredEvent:
        plain = {key: _deserializer.deserialize(value) for key, value in item.items()}
        return cls(
            stream_id=str(plain["stream_id"]),
            version=int(plain["version"]),
            event=decode(str(plain["type"]), int(plain.get("schema_version", 1)), json.loads(plain["data"])),
            event_id=str(plain["event_id"]),
            recorded_at=float(plain["recorded_at"]),
            metadata=json.loads(plain.get("metadata") or "{}"),
        )

    @classmethod
    def from_stream_record(cls, record: dict[str, Any]) -> StoredEvent | None:
        """The event inside a DynamoDB Streams record, or None for records that are not appends.

        An image that is not a readable event (a missing key, data that is not JSON, an unknown
        type or payload) is a PoisonRecord: reading it again will not help.
        """
        if record.get("eventName") != "INSERT":
            return None
        image = record.get("dynamodb", {}).get("NewImage")
        if not image:
            return None
        try:
            return cls.from_item(image)
        except (KeyError, ValueError, TypeError, AttributeError, EventDecodeError) as error:
            raise PoisonRecord(f"stream record is not a readable event: {type(error).__name__}: {error}") from error
