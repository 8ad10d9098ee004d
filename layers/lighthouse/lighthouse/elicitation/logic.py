"""Elicitation decisions, the stream's fold and its read models: pure functions, no I/O, no clock."""

from __future__ import annotations

import bisect
from typing import Any

from lighthouse.elicitation import schemas
from lighthouse.elicitation.models import (
    FINAL_STATUS,
    Answer,
    Ask,
    ElicitationAccepted,
    ElicitationCancelled,
    ElicitationDeclined,
    ElicitationExpired,
    ElicitationRequested,
    ElicitationSecurityViolation,
    ElicitationState,
    End,
    Ending,
)
from lighthouse.errors import AlreadyExists, Conflict, Forbidden, MalformedRequest, NotFound, ValidationFailed
from lighthouse.events.model import StoredEvent
from lighthouse.events.types import Event
from lighthouse.paging import decode_cursor, encode_cursor

PRIORITY_RANK = {"urgent": 0, "normal": 1}
# Answer-latency histogram bucket upper bounds, in milliseconds (the last one is open).
LATENCY_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000, 3_600_000)


class ElicitationFold:
    name = "elicitation-v2"
    snapshots = False  # a request and one ending

    def initial(self) -> ElicitationState:
        return ElicitationState()

    def evolve(self, state: ElicitationState, stored: StoredEvent) -> ElicitationState:
        event = stored.event
        if isinstance(event, ElicitationRequested):
            return ElicitationState.model_validate({**event.model_dump(by_alias=True), "status": "pending"})
        if isinstance(event, Ending):
            update: dict[str, Any] = {"status": FINAL_STATUS[type(event)], "finished_at": event.at}
            if isinstance(event, ElicitationAccepted | ElicitationDeclined):
                update["response"] = event.response
            return state.model_copy(update=update)
        return state

    def to_snapshot(self, state: ElicitationState) -> dict[str, Any]:
        return state.model_dump(mode="json", by_alias=True)

    def from_snapshot(self, data: dict[str, Any]) -> ElicitationState:
        return ElicitationState.model_validate(data)


FOLD = ElicitationFold()


def ask(state: ElicitationState, command: Ask) -> list[Event]:
    if state.exists:
        if command.managed_by:
            return []  # a retried step of the execution that owns it: already asked
        raise AlreadyExists(f"elicitation {command.elicitation_id!r} exists")
    return [
        ElicitationRequested(
            elicitation_id=command.elicitation_id,
            from_agent=command.from_agent,
            to_agent=command.to_agent,
            message=command.message,
            schema=command.schema,
            priority=command.priority,
            salt=command.salt,
            created_at=command.at,
            expires_at=command.at + command.timeout_seconds,
            managed_by=command.managed_by,
        )
    ]


def ensure_open(state: ElicitationState, now: float) -> None:
    if not state.exists:
        raise NotFound("elicitation not found")
    if state.final:
        raise Conflict(f"elicitation is already {state.status}", {"status": state.status})
    if now >= state.expires_at:
        raise Conflict("elicitation has expired", {"status": "expired", "expired_at": state.expires_at})


def answer(state: ElicitationState, command: Answer) -> list[Event]:
    """The target's signed answer; accepted data must match the question's schema."""
    ensure_open(state, command.at)
    if command.responder != state.to_agent:
        raise Forbidden("only the agent this elicitation was addressed to may answer it")
    response = command.response
    if response.action == "accept":
        problems = schemas.violations(state.schema_, response.data)
        if problems:
            raise ValidationFailed("data does not match the elicitation's schema", {"violations": problems})
        return [ElicitationAccepted(at=command.at, to_agent=state.to_agent, response=response)]
    return [ElicitationDeclined(at=command.at, to_agent=state.to_agent, response=response)]


def end(state: ElicitationState, command: End) -> list[Event]:
    """Cancel refuses an elicitation that is over; withdraw and expire quietly do nothing then."""
    if command.kind == "cancel":
        ensure_open(state, command.at)
        if command.by != state.from_agent:
            raise Forbidden("only the requester may cancel an elicitation")
        return [ElicitationCancelled(at=command.at, to_agent=state.to_agent, by=command.by)]
    if not state.exists or state.final:
        return []
    if command.kind == "withdraw":
        return [ElicitationCancelled(at=command.at, to_agent=state.to_agent, by=command.by)]
    return [ElicitationExpired(at=command.at, to_agent=state.to_agent)]


# ---- the inbox cursor ----------------------------------------------------------------------------

# Questions created this long before the newest one seen are tracked by id, newer ones by time: a
# question may commit a little after a younger one (clocks, retries) and must not be skipped.
INBOX_WINDOW_SECONDS = 5.0
MAX_INBOX_IDS = 100  # beyond it, some are listed again: never lost
INBOX_ID_CHARS = 12  # a prefix of the (random, hex) id tells questions of one 5 s window apart
MAX_INBOX_CURSOR_CHARS = 4096


class Inbox:
    """What a client has seen of its inbox: the newest creation time, and the ids of the questions
    created within INBOX_WINDOW_SECONDS of it. Immutable; `token()` is the opaque `cursor`."""

    def __init__(self, newest: float = 0.0, ids: frozenset[str] = frozenset()) -> None:
        self.newest = newest
        self.ids = ids

    def covers(self, entry: dict[str, Any]) -> bool:
        created = float(entry["created_at"])
        if created < self.newest - INBOX_WINDOW_SECONDS:
            return True
        return created <= self.newest and entry["elicitation_id"][:INBOX_ID_CHARS] in self.ids

    def extended(self, entries: list[dict[str, Any]]) -> Inbox:
        newest = max([self.newest, *(float(e["created_at"]) for e in entries)])
        known = {e["elicitation_id"][:INBOX_ID_CHARS]: float(e["created_at"]) for e in entries}
        ids = {i for i in self.ids if i not in known} | set(known)
        recent = {i for i in ids if known.get(i, newest) >= newest - INBOX_WINDOW_SECONDS}
        return Inbox(newest, frozenset(sorted(recent)[:MAX_INBOX_IDS]))

    def token(self) -> str:
        return encode_cursor({"t": self.newest, "ids": sorted(self.ids)})

    @classmethod
    def parse(cls, token: str) -> Inbox:
        refused = MalformedRequest("after is not a cursor this API issued", code="INVALID_CURSOR")
        try:
            value = decode_cursor(token, MAX_INBOX_CURSOR_CHARS)
        except MalformedRequest as error:
            raise refused from error
        if (
            not isinstance(value, dict)
            or not isinstance(value.get("t"), int | float)
            or not isinstance(value.get("ids"), list)
            or not all(isinstance(i, str) for i in value["ids"])
            or len(value["ids"]) > MAX_INBOX_IDS
        ):
            raise refused
        return cls(float(value["t"]), frozenset(value["ids"]))


def latency_bucket(milliseconds: float) -> str:
    index = bisect.bisect_left(LATENCY_BUCKETS_MS, milliseconds)
    return f"le_{LATENCY_BUCKETS_MS[index]}" if index < len(LATENCY_BUCKETS_MS) else "le_inf"


class ElicitationMetricsProjection:
    """Counters: elicitations by status, answer latency histogram, security violations."""

    name = "metrics"
    key = "elicitation"
    events: tuple[type[Event], ...] = (
        ElicitationRequested,
        ElicitationAccepted,
        ElicitationDeclined,
        ElicitationCancelled,
        ElicitationExpired,
        ElicitationSecurityViolation,
    )

    def handles(self, stored: StoredEvent) -> bool:
        return isinstance(stored.event, self.events)

    def increments(self, stored: StoredEvent) -> dict[str, dict[str, int]]:
        event = stored.event
        if isinstance(event, ElicitationSecurityViolation):
            return {self.key: {"security_violations": 1, f"violation_{event.kind}": 1}}
        if isinstance(event, ElicitationRequested):
            return {self.key: {"requested": 1, "status_pending": 1}}
        counters = {"status_pending": -1, f"status_{FINAL_STATUS[type(event)]}": 1}
        if isinstance(event, ElicitationAccepted | ElicitationDeclined):
            counters[f"latency_{latency_bucket(event.response.latency_ms)}"] = 1
            counters["answered"] = 1
        return {self.key: counters}


def latency_percentiles(counters: dict[str, int]) -> dict[str, float | None]:
    """p50/p95/p99 from the histogram: the upper bound of the bucket holding each percentile."""
    buckets: list[tuple[float, int]] = [(bound, counters.get(f"latency_le_{bound}", 0)) for bound in LATENCY_BUCKETS_MS]
    buckets.append((float("inf"), counters.get("latency_le_inf", 0)))
    total = sum(count for _, count in buckets)
    result: dict[str, float | None] = {}
    for name, fraction in (("p50_ms", 0.50), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        result[name] = _percentile(buckets, fraction * total) if total else None
    return result


def _percentile(buckets: list[tuple[float, int]], threshold: float) -> float | None:
    running = 0
    for bound, count in buckets:
        running += count
        if running >= threshold:
            return bound
    return None
