"""The elicitation stream: events, the folded state, and the read models built from them."""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field
from typing import Any

from lighthouse.events.model import StoredEvent

REQUESTED = "ELICITATION_REQUESTED"
ACCEPTED = "ELICITATION_ACCEPTED"
DECLINED = "ELICITATION_DECLINED"
CANCELLED = "ELICITATION_CANCELLED"
EXPIRED = "ELICITATION_EXPIRED"
SECURITY_VIOLATION = "ELICITATION_SECURITY_VIOLATION"

FINAL_STATUS = {ACCEPTED: "accepted", DECLINED: "declined", CANCELLED: "cancelled", EXPIRED: "expired"}
LIFECYCLE_EVENTS = frozenset({REQUESTED, *FINAL_STATUS})
PRIORITY_RANK = {"urgent": 0, "normal": 1}

# Answer-latency histogram bucket upper bounds, in milliseconds (the last one is open).
LATENCY_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000, 3_600_000)


def stream_id(elicitation_id: str) -> str:
    return f"elicitation#{elicitation_id}"


@dataclass
class ElicitationState:
    elicitation_id: str = ""
    from_agent: str = ""
    to_agent: str = ""
    message: str = ""
    schema: dict[str, Any] = field(default_factory=dict)
    priority: str = "normal"
    salt: str = ""
    created_at: float = 0.0
    expires_at: float = 0.0
    status: str = "pending"
    finished_at: float | None = None
    response: dict[str, Any] | None = None

    @property
    def exists(self) -> bool:
        return bool(self.elicitation_id)

    @property
    def final(self) -> bool:
        return self.status != "pending"


class ElicitationReducer:
    name = "elicitation-v1"

    def initial(self) -> ElicitationState:
        return ElicitationState()

    def apply(self, state: ElicitationState, event: StoredEvent) -> ElicitationState:
        data = event.data
        if event.type == REQUESTED:
            return ElicitationState(
                elicitation_id=data["elicitation_id"],
                from_agent=data["from_agent"],
                to_agent=data["to_agent"],
                message=data["message"],
                schema=data["schema"],
                priority=data["priority"],
                salt=data["salt"],
                created_at=data["created_at"],
                expires_at=data["expires_at"],
            )
        if event.type in FINAL_STATUS:
            state.status = FINAL_STATUS[event.type]
            state.finished_at = data["at"]
            if event.type in (ACCEPTED, DECLINED):
                state.response = dict(data["response"])
        return state

    def to_snapshot(self, state: ElicitationState) -> dict[str, Any]:
        return asdict(state)

    def from_snapshot(self, data: dict[str, Any]) -> ElicitationState:
        return ElicitationState(**data)


def _summary(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "elicitation_id": data["elicitation_id"],
        "from_agent": data["from_agent"],
        "to_agent": data["to_agent"],
        "message": data["message"],
        "schema": data["schema"],
        "priority": data["priority"],
        "created_at": data["created_at"],
        "expires_at": data["expires_at"],
    }


class ElicitationStatusProjection:
    """Read model `elicitations`: one document per elicitation (status, timestamps, response)."""

    name = "elicitations"

    def handles(self, event: StoredEvent) -> bool:
        return event.type in LIFECYCLE_EVENTS

    def locate(self, event: StoredEvent) -> tuple[str, str]:
        return self.name, event.stream_id.removeprefix("elicitation#")

    def apply(self, document: dict[str, Any] | None, event: StoredEvent) -> dict[str, Any] | None:
        if event.type == REQUESTED:
            return {**_summary(event.data), "status": "pending", "finished_at": None, "response": None}
        if document is None:
            return None
        document["status"] = FINAL_STATUS[event.type]
        document["finished_at"] = event.data["at"]
        if "response" in event.data:
            document["response"] = event.data["response"]
        return document


class PendingProjection:
    """Read model `pending#<agent>`: the open elicitations addressed to each agent."""

    name = "pending"

    def handles(self, event: StoredEvent) -> bool:
        return event.type in LIFECYCLE_EVENTS

    def locate(self, event: StoredEvent) -> tuple[str, str]:
        return f"pending#{event.data['to_agent']}", event.stream_id.removeprefix("elicitation#")

    def apply(self, document: dict[str, Any] | None, event: StoredEvent) -> dict[str, Any] | None:
        return _summary(event.data) if event.type == REQUESTED else None


def latency_bucket(milliseconds: float) -> str:
    index = bisect.bisect_left(LATENCY_BUCKETS_MS, milliseconds)
    return f"le_{LATENCY_BUCKETS_MS[index]}" if index < len(LATENCY_BUCKETS_MS) else "le_inf"


class ElicitationMetricsProjection:
    """Counters: elicitations by status, answer latency histogram, security violations."""

    name = "metrics"
    key = "elicitation"

    def handles(self, event: StoredEvent) -> bool:
        return event.type in LIFECYCLE_EVENTS or event.type == SECURITY_VIOLATION

    def increments(self, event: StoredEvent) -> dict[str, dict[str, int]]:
        if event.type == SECURITY_VIOLATION:
            return {self.key: {"security_violations": 1, f"violation_{event.data['kind']}": 1}}
        if event.type == REQUESTED:
            return {self.key: {"requested": 1, "status_pending": 1}}
        counters = {"status_pending": -1, f"status_{FINAL_STATUS[event.type]}": 1}
        if event.type in (ACCEPTED, DECLINED):
            latency_ms = event.data["response"]["latency_ms"]
            counters[f"latency_{latency_bucket(latency_ms)}"] = 1
            counters["answered"] = 1
        return {self.key: counters}


def latency_percentiles(counters: dict[str, int]) -> dict[str, float | None]:
    """p50/p95/p99 from the histogram: the upper bound of the bucket holding each percentile."""
    buckets: list[tuple[float, int]] = [(bound, counters.get(f"latency_le_{bound}", 0)) for bound in LATENCY_BUCKETS_MS]
    buckets.append((float("inf"), counters.get("latency_le_inf", 0)))
    total = sum(count for _, count in buckets)
    result: dict[str, float | None] = {}
    for name, fraction in (("p50_ms", 0.50), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        if total == 0:
            result[name] = None
            continue
        threshold, running = fraction * total, 0
        for bound, count in buckets:
            running += count
            if running >= threshold:
                result[name] = bound
                break
    return result
