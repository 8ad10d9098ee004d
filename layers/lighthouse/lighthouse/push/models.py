"""Notification envelopes, the feed event they are recorded as, and the WebSocket messages.

A notification is small and typed: what happened (`type`), to which object (`id`, the object's
stream `version`, a `link` to fetch it over HTTP), where it sits in the recipient's feed (`feed`,
`seq`), and a few summary fields the recipient may see anyway. The full object is fetched over
HTTP, where the API checks who may read it, so nothing a reader may not see is pushed.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from lighthouse.events.types import Event

NotificationType = Literal[
    "elicitation.requested",
    "elicitation.answered",
    "elicitation.cancelled",
    "elicitation.expired",
    "validation.vote_requested",
    "validation.decided",
    "task.changed",
    "run.changed",
    "fleet.changed",
]
FEED_PATTERN = r"^(agent:[A-Za-z0-9][A-Za-z0-9._:-]{0,127}|gate|fleet)$"
ADMIN_FEEDS = ("gate", "fleet")
Scalar = str | int | float | bool | None
MAX_BACKLOG = 500  # notifications resent per feed by one subscribe; the client asks again for more


class Envelope(BaseModel):
    """What a connection receives for each notification (schemas/notifications/envelope.json)."""

    model_config = ConfigDict(extra="forbid")

    type: NotificationType
    id: str = Field(min_length=1, max_length=256, description="the object's id")
    version: int = Field(ge=1, description="the object's stream version this notification is about")
    feed: str = Field(pattern=FEED_PATTERN, description="the feed it belongs to: agent:<id>, gate or fleet")
    seq: int = Field(ge=1, description="its position in the feed: gapless, increasing; resume after the last seen")
    link: str = Field(pattern=r"^/", max_length=512, description="GET this (with your token) for the whole object")
    at: float = Field(description="when the event happened (Unix seconds)")
    summary: dict[str, Scalar] = Field(default_factory=dict, max_length=8)


class Notification(BaseModel):
    """A notification before it has a place in a feed (what routing produces)."""

    feed: str
    type: NotificationType
    id: str
    version: int
    link: str
    at: float
    summary: dict[str, Scalar] = Field(default_factory=dict)


class NotificationRecorded(Event):
    """One notification in a recipient's feed (stream `feed#<feed>`; the stream version is its seq)."""

    TYPE: ClassVar[str] = "NOTIFICATION_RECORDED"

    type: NotificationType
    id: str
    version: int
    link: str
    at: float
    summary: dict[str, Scalar] = Field(default_factory=dict)
    source_event_id: str


class Subscribe(BaseModel):
    """`{"action": "subscribe", "feeds": {"agent:me": 12, "gate": null}}`: each feed with the last seq
    seen (null: only what comes next). The reply resends what was missed, then acknowledges."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["subscribe"]
    feeds: dict[str, Annotated[int, Field(ge=0, strict=True)] | None] = Field(min_length=1, max_length=8)


class Subscribed(BaseModel):
    type: Literal["subscribed"] = "subscribed"
    feeds: dict[str, dict[str, Any]]


class SocketError(BaseModel):
    type: Literal["error"] = "error"
    code: str
    message: str


class ConnectionRecord(BaseModel):
    connection_id: str
    agent_id: str
    role: str
    feeds: list[str]
    connected_at: float
    expires_at: int


def feed_stream(feed: str) -> str:
    return f"feed#{feed}"


def agent_feed(agent_id: str) -> str:
    return f"agent:{agent_id}"


def envelope_schema() -> dict[str, Any]:
    """schemas/notifications/envelope.json: every message the WebSocket API pushes for a notification."""
    body = Envelope.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://lighthouse.local/schemas/notifications/envelope.json",
        "title": "Lighthouse notification envelope",
        **{key: value for key, value in body.items() if key != "title"},
    }
