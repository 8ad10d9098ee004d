"""Real-time delivery on the one command path: connections (the WebSocket routes) and the notifier
(the events table's stream)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lighthouse.auth.tokens import Principal
from lighthouse.clock import Clock
from lighthouse.errors import Forbidden, NotFound, RateLimited, Unauthenticated
from lighthouse.events import EventStore
from lighthouse.events.model import StoredEvent
from lighthouse.flags.logic import WEBSOCKET_PUSH
from lighthouse.logs import logger as logger_for
from lighthouse.push import logic
from lighthouse.push.models import MAX_BACKLOG, ConnectionRecord, Envelope, Subscribe, Subscribed, agent_feed
from lighthouse.push.store import Connections, Feeds, ManagementApi

logger = logger_for("lighthouse-push")
SUBPROTOCOL = "lighthouse.v1"
MAX_CONNECTIONS_PER_AGENT = 10
Enabled = Callable[[str, str, str], bool]  # (flag, agent id, role) -> on?


def token_of(headers: Mapping[str, str], query: Mapping[str, str]) -> tuple[str, bool]:
    """The bearer token of a WebSocket connect: `?token=` or, from browsers (which cannot set
    Authorization on a WebSocket), the `Sec-WebSocket-Protocol` header `lighthouse.v1, <token>`.
    Returns (the token as an Authorization value, whether the subprotocol carried it)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    offered = [part.strip() for part in lowered.get("sec-websocket-protocol", "").split(",") if part.strip()]
    if SUBPROTOCOL in offered:
        tokens = [part for part in offered if part != SUBPROTOCOL]
        if len(tokens) == 1:
            return f"Bearer {tokens[0]}", True
    if lowered.get("authorization"):
        return lowered["authorization"], False
    if query.get("token"):
        return f"Bearer {query['token']}", False
    raise Unauthenticated(
        "no token: connect with ?token=<bearer token>, an Authorization header, "
        f"or Sec-WebSocket-Protocol: {SUBPROTOCOL}, <token>"
    )


class PushConnections:
    """The WebSocket API's routes: $connect, $disconnect and subscribe."""

    def __init__(
        self,
        authenticate: Callable[[str | None], Principal],
        connections: Connections,
        feeds: Feeds,
        management: ManagementApi,
        enabled: Enabled,
        clock: Clock,
        ttl_seconds: int,
        charge: Callable[[Principal], None] = lambda principal: None,
    ) -> None:
        self._authenticate = authenticate
        self._charge = charge
        self._connections = connections
        self._feeds = feeds
        self._management = management
        self._enabled = enabled
        self._clock = clock
        self._ttl = ttl_seconds

    def connect(self, connection_id: str, authorization: str) -> ConnectionRecord:
        principal = self._authenticate(authorization)
        if not self._enabled(WEBSOCKET_PUSH, principal.agent_id, principal.role):
            raise Forbidden(
                f"WebSocket push is not enabled for {principal.agent_id} (flag {WEBSOCKET_PUSH}): long-poll instead"
            )
        self._charge(principal)
        now = self._clock.now()
        open_now = self._connections.subscribers(agent_feed(principal.agent_id), now)
        if len(open_now) >= MAX_CONNECTIONS_PER_AGENT:
            raise RateLimited(
                f"{principal.agent_id} has {len(open_now)} open connections (at most {MAX_CONNECTIONS_PER_AGENT}): "
                "close one first",
                retry_after_seconds=60,
            )
        record = ConnectionRecord(
            connection_id=connection_id,
            agent_id=principal.agent_id,
            role=principal.role,
            feeds=[agent_feed(principal.agent_id)],
            connected_at=now,
            expires_at=int(now) + self._ttl,
        )
        self._connections.add(record)
        return record

    def disconnect(self, connection_id: str) -> None:
        self._connections.remove(connection_id)

    def subscribe(self, connection_id: str, request: Subscribe) -> Subscribed:
        """Subscribe to feeds, resend what each missed after the seq given, then acknowledge; all of
        it posted to the connection in that order."""
        record = self._connections.get(connection_id)
        if record is None:
            raise NotFound("this connection is not registered (it expired): connect again")
        self._charge(Principal(record.agent_id, record.role, 0, 0, ""))
        refused = [feed for feed in request.feeds if not logic.may_read(feed, record.agent_id, record.role)]
        if refused:
            raise Forbidden(f"{record.agent_id} may not subscribe to {', '.join(sorted(refused))}")
        record = self._connections.subscribe(record, list(request.feeds))
        report: dict[str, dict[str, Any]] = {}
        for feed, since in request.feeds.items():
            backlog = self._feeds.after(feed, since, MAX_BACKLOG) if since is not None else []
            for envelope in backlog:
                if not self._management.post(connection_id, envelope.model_dump(mode="json")):
                    self._connections.remove(connection_id)
                    raise NotFound("the connection went away while its backlog was sent")
            head = backlog[-1].seq if len(backlog) == MAX_BACKLOG else self._feeds.head(feed)
            report[feed] = {"head": head, "resent": len(backlog), "more": len(backlog) == MAX_BACKLOG}
        acknowledgement = Subscribed(feeds=report)
        self._management.post(connection_id, acknowledgement.model_dump(mode="json"))
        return acknowledgement

    def refuse(self, connection_id: str, code: str, message: str) -> None:
        """Tell the client why its message was refused (on the connection: a WebSocket has no status)."""
        self._management.post(connection_id, {"type": "error", "code": code, "message": message[:1000]})


class Notifier:
    """Turns one stored event into notifications: each recorded in its feed, then posted to the feed's
    connections (a gone connection is forgotten; one whose agent's push flag is now off is closed)."""

    def __init__(
        self,
        events: EventStore,
        feeds: Feeds,
        connections: Connections,
        management: ManagementApi,
        enabled: Enabled,
        clock: Clock,
    ) -> None:
        self._events = events
        self._feeds = feeds
        self._connections = connections
        self._management = management
        self._enabled = enabled
        self._clock = clock

    def handle(self, stored: StoredEvent) -> list[Envelope]:
        delivered: list[Envelope] = []
        for notification in logic.route(stored, self._participants):
            envelope = self._feeds.record(notification, stored.event_id, self._clock.now())
            if envelope is None:
                continue  # an earlier try of this batch recorded it; if its post failed, resume delivers it
            self._post(envelope)
            delivered.append(envelope)
        return delivered

    def _post(self, envelope: Envelope) -> None:
        message = envelope.model_dump(mode="json")
        for subscriber in self._connections.subscribers(envelope.feed, self._clock.now()):
            if not self._enabled(WEBSOCKET_PUSH, subscriber.agent_id, subscriber.role):
                self._management.close(subscriber.connection_id)
                self._connections.remove(subscriber.connection_id)
                continue
            if not self._management.post(subscriber.connection_id, message):
                logger.info("connection gone (410): forgotten", extra={"connection": subscriber.connection_id})
                self._connections.remove(subscriber.connection_id)

    def _participants(self, stream_id: str) -> logic.Participants:
        first = self._events.load(stream_id, 1, 1)
        if not first:
            return logic.Participants()
        data = first[0].event.model_dump(mode="json", by_alias=True)
        return logic.Participants(requester=data.get("from_agent"), owner=data.get("owner") or data.get("by"))
