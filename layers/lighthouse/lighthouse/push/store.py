"""Where push state lives: connections (the connections table, with a TTL), feeds (event store
streams `feed#<feed>`), and the management API that posts to a connection."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lighthouse.auth.nonces import NonceStore
from lighthouse.errors import ConcurrencyError
from lighthouse.events import EventStore
from lighthouse.events.recorders import AlongsideRefused
from lighthouse.push.models import ConnectionRecord, Envelope, Notification, NotificationRecorded, feed_stream

CONNECTION_SK = "connection"
# A notification is recorded once per (source event, feed) whatever the retries of the stream batch.
DEDUP_SCOPE = "push"
DEDUP_SECONDS = 7 * 86400
APPEND_ATTEMPTS = 8
MAX_REMEMBERED_HEADS = 10_000


@dataclass(frozen=True)
class Subscriber:
    connection_id: str
    agent_id: str
    role: str


class Connections:
    """`connection#<id>` holds who is connected; `feed#<feed>` / `<id>` lists a feed's subscribers."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def add(self, record: ConnectionRecord) -> None:
        items = [self._connection_item(record)] + [self._subscription_item(record, feed) for feed in record.feeds]
        self._client.transact_write_items(TransactItems=[{"Put": {"TableName": self._table, "Item": i}} for i in items])

    def subscribe(self, record: ConnectionRecord, feeds: list[str]) -> ConnectionRecord:
        added = [feed for feed in feeds if feed not in record.feeds]
        if not added:
            return record
        updated = record.model_copy(update={"feeds": [*record.feeds, *added]})
        items = [self._connection_item(updated)] + [self._subscription_item(updated, feed) for feed in added]
        self._client.transact_write_items(TransactItems=[{"Put": {"TableName": self._table, "Item": i}} for i in items])
        return updated

    def get(self, connection_id: str) -> ConnectionRecord | None:
        item = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": f"connection#{connection_id}"}, "sk": {"S": CONNECTION_SK}}
        ).get("Item")
        return ConnectionRecord.model_validate_json(item["doc"]["S"]) if item else None

    def remove(self, connection_id: str) -> ConnectionRecord | None:
        """Forget a connection and its subscriptions (gone, or disconnected); None if unknown."""
        record = self.get(connection_id)
        keys = [{"pk": {"S": f"connection#{connection_id}"}, "sk": {"S": CONNECTION_SK}}]
        if record is not None:
            keys += [{"pk": {"S": f"feed#{feed}"}, "sk": {"S": connection_id}} for feed in record.feeds]
        for start in range(0, len(keys), 25):
            self._client.batch_write_item(
                RequestItems={self._table: [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]}
            )
        return record

    def subscribers(self, feed: str, now: float) -> list[Subscriber]:
        found: list[Subscriber] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "FilterExpression": "expires_at > :now",
            "ExpressionAttributeValues": {":pk": {"S": f"feed#{feed}"}, ":now": {"N": str(int(now))}},
            "ProjectionExpression": "sk, agent_id, #role",
            "ExpressionAttributeNames": {"#role": "role"},
        }
        while True:
            page = self._client.query(**kwargs)
            found += [
                Subscriber(item["sk"]["S"], item["agent_id"]["S"], item.get("role", {}).get("S", "agent"))
                for item in page.get("Items", [])
            ]
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _connection_item(self, record: ConnectionRecord) -> dict[str, Any]:
        return {
            "pk": {"S": f"connection#{record.connection_id}"},
            "sk": {"S": CONNECTION_SK},
            "agent_id": {"S": record.agent_id},
            "doc": {"S": record.model_dump_json()},
            "expires_at": {"N": str(record.expires_at)},
        }

    def _subscription_item(self, record: ConnectionRecord, feed: str) -> dict[str, Any]:
        return {
            "pk": {"S": f"feed#{feed}"},
            "sk": {"S": record.connection_id},
            "agent_id": {"S": record.agent_id},
            "role": {"S": record.role},
            "expires_at": {"N": str(record.expires_at)},
        }


class Feeds:
    """Each recipient's notifications, in order, in the event store: resuming reads them back."""

    def __init__(self, events: EventStore, nonces: NonceStore) -> None:
        self._events = events
        self._nonces = nonces
        self._heads: dict[str, int] = {}

    def record(self, notification: Notification, source_event_id: str, now: float) -> Envelope | None:
        """Append the notification to its feed; None if this source event was already recorded there."""
        event = NotificationRecorded(
            type=notification.type,
            id=notification.id,
            version=notification.version,
            link=notification.link,
            at=notification.at,
            summary=notification.summary,
            source_event_id=source_event_id,
        )
        stream = feed_stream(notification.feed)
        once = {"Put": self._nonces.put(DEDUP_SCOPE, f"{source_event_id}:{notification.feed}", now, DEDUP_SECONDS)}
        # The head this process last wrote is usually still the head (one notifier per shard): try
        # it first and read the stream's head only when another writer moved it.
        head = self._heads.get(stream)
        for _ in range(APPEND_ATTEMPTS):
            if head is None:
                head = self._events.current_version(stream)
            try:
                stored = self._events.append(stream, [event], head, alongside=[once])
            except AlongsideRefused:
                return None
            except ConcurrencyError:
                head = None  # another notifier took the next seq: read the head again
                continue
            self._remember(stream, stored[0].version)
            return _envelope(notification.feed, stored[0].version, event)
        raise ConcurrencyError(f"feed {notification.feed} kept moving; the batch will be retried")

    def _remember(self, stream: str, head: int) -> None:
        if len(self._heads) >= MAX_REMEMBERED_HEADS:
            self._heads.clear()
        self._heads[stream] = head

    def after(self, feed: str, seq: int, limit: int) -> list[Envelope]:
        stored = self._events.load(feed_stream(feed), from_version=seq + 1, to_version=seq + limit)
        return [_envelope(feed, s.version, s.event) for s in stored if isinstance(s.event, NotificationRecorded)]

    def head(self, feed: str) -> int:
        return self._events.current_version(feed_stream(feed))


def _envelope(feed: str, seq: int, event: NotificationRecorded) -> Envelope:
    return Envelope(
        type=event.type,
        id=event.id,
        version=event.version,
        feed=feed,
        seq=seq,
        link=event.link,
        at=event.at,
        summary=event.summary,
    )


class ManagementApi:
    """API Gateway's @connections: post to a connection, close it. A connection that is gone (410)
    answers False, so that the caller forgets it."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def post(self, connection_id: str, message: dict[str, Any]) -> bool:
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=json.dumps(message).encode())
        except ClientError as error:
            if _gone(error):
                return False
            raise
        return True

    def close(self, connection_id: str) -> None:
        try:
            self._client.delete_connection(ConnectionId=connection_id)
        except ClientError as error:
            if not _gone(error):
                raise


def _gone(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "GoneException" or (
        error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 410
    )
