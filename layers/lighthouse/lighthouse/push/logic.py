"""Pure routing: which feeds a stored event notifies, and with what envelope.

Recipients come from the event itself where it names them, else from the object's first event
(`Participants`, read by the caller: the requester of an elicitation, a task's owner, a run's
launcher). Admins' feeds (`gate`, `fleet`) get gate decisions and fleet changes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lighthouse.events.model import StoredEvent
from lighthouse.push.models import ADMIN_FEEDS, FEED_PATTERN, Notification, NotificationType, agent_feed

ELICITATION_TYPES = (
    "ELICITATION_REQUESTED",
    "ELICITATION_ACCEPTED",
    "ELICITATION_DECLINED",
    "ELICITATION_CANCELLED",
    "ELICITATION_EXPIRED",
)
TASK_TYPES = (
    "TASK_CREATED",
    "TASK_STARTED",
    "STAGE_STARTED",
    "STAGE_FINISHED",
    "STAGE_FAILED",
    "TASK_COMPLETED",
    "TASK_FAILED",
    "TASK_CANCELLED",
    "TASK_RESUMED",
)
RUN_TYPES = ("RUN_LAUNCHED", "RUN_STARTED", "RUN_JOB_SUCCEEDED", "RUN_JOB_FAILED", "RUN_FINISHED")
FLEET_TYPES = (
    "FLEET_PRESENCE_CHANGED",
    "FLEET_COMMAND_COMPLETED",
    "FLEET_COMMAND_EXPIRED",
    "FLEET_ROLLOUT_STARTED",
    "FLEET_ROLLOUT_FINISHED",
)
GATE_TYPES = ("VALIDATION_COMPLETED",)
# Every event type that notifies someone: the notifier's stream filter in template.yaml (kept in
# step by tests/unit/test_push.py).
ROUTED_TYPES = (*ELICITATION_TYPES, *TASK_TYPES, *RUN_TYPES, *FLEET_TYPES, *GATE_TYPES)
SUMMARY_TEXT = 200


@dataclass(frozen=True)
class Participants:
    """Who an object belongs to, from its stream's first event (read by the caller)."""

    requester: str | None = None  # an elicitation's from_agent
    owner: str | None = None  # a task's owner, a run's launcher


Lookup = Callable[[str], Participants]  # stream id -> participants


def _kind_and_id(stream_id: str) -> tuple[str, str]:
    kind, _, object_id = stream_id.partition("#")
    return kind, object_id


@dataclass(frozen=True)
class _Routed:
    """One stored event as the routers see it."""

    stored: StoredEvent
    data: dict[str, Any]
    kind: str
    object_id: str
    participants: Lookup

    @property
    def type(self) -> str:
        return self.stored.type

    def note(self, feed: str, notification_type: NotificationType, link: str, **summary: Any) -> Notification:
        data = self.data
        return Notification(
            feed=feed, type=notification_type, id=self.object_id, version=self.stored.version, link=link,
            at=float(data.get("at") or data.get("created_at") or self.stored.recorded_at),
            summary={key: value for key, value in summary.items() if value is not None},
        )  # fmt: skip


def route(stored: StoredEvent, participants: Lookup) -> list[Notification]:
    """The notifications one stored event makes (none for most events)."""
    kind, object_id = _kind_and_id(stored.stream_id)
    for types, stream_kind, router in _ROUTERS:
        if stored.type in types and stream_kind in (None, kind):
            data: dict[str, Any] = stored.event.model_dump(mode="json", by_alias=True)
            return router(_Routed(stored, data, kind, object_id, participants))
    return []


def _task(event: _Routed) -> list[Notification]:
    owner = event.data.get("owner") or event.participants(event.stored.stream_id).owner
    summary = {"event": event.type, "stage": event.data.get("stage")}
    return [event.note(agent_feed(owner), "task.changed", f"/tasks/{event.object_id}", **summary)] if owner else []


def _run(event: _Routed) -> list[Notification]:
    data = event.data
    launcher = data.get("by") if event.type == "RUN_LAUNCHED" else event.participants(event.stored.stream_id).owner
    summary = {"event": event.type, "status": data.get("status")}
    return [event.note(agent_feed(launcher), "run.changed", f"/runs/{event.object_id}", **summary)] if launcher else []


def _gate(event: _Routed) -> list[Notification]:
    data = event.data
    summary = {"agent": data.get("agent"), "decision": data.get("decision"), "decided_by": data.get("decided_by")}
    return [event.note("gate", "validation.decided", f"/validate/{event.object_id}", **summary)]


def _fleet(event: _Routed) -> list[Notification]:
    link = _fleet_link(event.kind, event.object_id)
    return [event.note("fleet", "fleet.changed", link, event=event.type, state=event.data.get("state"))]


def _elicitation(event: _Routed) -> list[Notification]:
    data, event_type = event.data, event.type
    link = f"/elicitation/status/{event.object_id}"
    target = agent_feed(data["to_agent"])
    if event_type == "ELICITATION_REQUESTED":
        notification_type: NotificationType = (
            "validation.vote_requested" if data.get("managed_by") else "elicitation.requested"
        )
        return [
            event.note(
                target, notification_type, link, from_agent=data["from_agent"], priority=data["priority"],
                expires_at=data["expires_at"], message=str(data["message"])[:SUMMARY_TEXT],
            )
        ]  # fmt: skip
    requester = event.participants(event.stored.stream_id).requester
    if event_type in ("ELICITATION_ACCEPTED", "ELICITATION_DECLINED"):
        response = data["response"]
        status = "accepted" if event_type == "ELICITATION_ACCEPTED" else "declined"
        summary = {"status": status, "responder": response["responder"], "signature": response["signature"]}
        return [event.note(agent_feed(requester), "elicitation.answered", link, **summary)] if requester else []
    if event_type == "ELICITATION_CANCELLED":
        return [event.note(target, "elicitation.cancelled", link, status="cancelled", by=data["by"])]
    recipients = [target, *([agent_feed(requester)] if requester else [])]
    return [event.note(feed, "elicitation.expired", link, status="expired") for feed in dict.fromkeys(recipients)]


# (event types, the stream kind they must come from or None for any, router)
_ROUTERS: tuple[tuple[tuple[str, ...], str | None, Callable[[_Routed], list[Notification]]], ...] = (
    (ELICITATION_TYPES, "elicitation", _elicitation),
    (TASK_TYPES, "task", _task),
    (RUN_TYPES, "run", _run),
    (GATE_TYPES, None, _gate),
    (FLEET_TYPES, None, _fleet),
)


def _fleet_link(kind: str, object_id: str) -> str:
    if kind == "fleetcmd":
        return f"/fleet/commands/{object_id}"
    if kind == "rollout":
        return f"/fleet/rollouts/{object_id}"
    return f"/fleet/agents/{object_id}"


def may_read(feed: str, agent_id: str, role: str) -> bool:
    """An agent reads its own feed; admins read the admin feeds too (and any agent's)."""
    if not re.fullmatch(FEED_PATTERN, feed):
        return False
    if role == "admin":
        return True
    return feed == agent_feed(agent_id) and feed not in ADMIN_FEEDS
