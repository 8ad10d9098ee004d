"""The validation streams: one per request (`validation#<id>`) and one for the policy versions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from lighthouse.events.model import StoredEvent

REQUESTED = "VALIDATION_REQUESTED"
EXPERT_VOTED = "EXPERT_VOTED"
COMPLETED = "VALIDATION_COMPLETED"
POLICY_UPDATED = "VALIDATION_POLICY_UPDATED"
POLICY_STREAM = "validation-policy"
AUDIT_MODEL = "validation-audit"
# Newest first in the audit read model: keys count down from this many milliseconds.
_KEY_EPOCH_MS = 10**13


def stream_id(request_id: str) -> str:
    return f"validation#{request_id}"


@dataclass
class ValidationState:
    request_id: str = ""
    agent: str = ""
    role: str = ""
    tool_name: str = ""
    tool_input: dict[str, Any] = field(default_factory=dict)
    cwd: str | None = None
    requested_at: float = 0.0
    gate: dict[str, Any] = field(default_factory=dict)
    experts: list[dict[str, str]] = field(default_factory=list)
    expert_timeout_seconds: int = 30
    votes: dict[str, dict[str, Any]] = field(default_factory=dict)
    completed: dict[str, Any] | None = None

    @property
    def exists(self) -> bool:
        return bool(self.request_id)

    @property
    def decided(self) -> bool:
        return self.completed is not None


class ValidationReducer:
    name = "validation-v1"

    def initial(self) -> ValidationState:
        return ValidationState()

    def apply(self, state: ValidationState, event: StoredEvent) -> ValidationState:
        data = event.data
        if event.type == REQUESTED:
            return ValidationState(
                request_id=data["request_id"],
                agent=data["agent"],
                role=data["role"],
                tool_name=data["tool_name"],
                tool_input=data["tool_input"],
                cwd=data.get("cwd"),
                requested_at=data["at"],
                gate=data["gate"],
                experts=list(data.get("experts", [])),
                expert_timeout_seconds=data.get("expert_timeout_seconds", 30),
            )
        if event.type == EXPERT_VOTED:
            state.votes[data["expert"]] = dict(data)
        elif event.type == COMPLETED:
            state.completed = dict(data)
        return state

    def to_snapshot(self, state: ValidationState) -> dict[str, Any]:
        return asdict(state)

    def from_snapshot(self, data: dict[str, Any]) -> ValidationState:
        return ValidationState(**data)


@dataclass
class PolicyState:
    version: int = 0
    policies: str | None = None
    updated_by: str | None = None
    updated_at: float | None = None


class PolicyReducer:
    name = "validation-policy-v1"

    def initial(self) -> PolicyState:
        return PolicyState()

    def apply(self, state: PolicyState, event: StoredEvent) -> PolicyState:
        if event.type == POLICY_UPDATED:
            return PolicyState(event.version, event.data["policies"], event.data["by"], event.data["at"])
        return state

    def to_snapshot(self, state: PolicyState) -> dict[str, Any]:
        return asdict(state)

    def from_snapshot(self, data: dict[str, Any]) -> PolicyState:
        return PolicyState(**data)


def audit_key(requested_at: float, request_id: str) -> str:
    return f"{_KEY_EPOCH_MS - int(requested_at * 1000):013d}#{request_id}"


class ValidationAuditProjection:
    """Read model `validation-audit#<agent>`: every request of an agent, newest first, with its decision."""

    name = AUDIT_MODEL

    def handles(self, event: StoredEvent) -> bool:
        return event.type in (REQUESTED, COMPLETED)

    def locate(self, event: StoredEvent) -> tuple[str, str]:
        data = event.data
        requested_at = data["at"] if event.type == REQUESTED else data["requested_at"]
        return f"{AUDIT_MODEL}#{data['agent']}", audit_key(requested_at, data["request_id"])

    def apply(self, document: dict[str, Any] | None, event: StoredEvent) -> dict[str, Any] | None:
        data = event.data
        if event.type == REQUESTED:
            gate = data["gate"]
            awaiting = bool(data.get("experts"))
            return {
                "request_id": data["request_id"],
                "agent": data["agent"],
                "tool_name": data["tool_name"],
                "decision": None if awaiting else gate["decision"],
                "status": "awaiting_experts" if awaiting else "decided",
                "reason": gate["reason"],
                "matched_rules": gate["matched_rules"],
                "requested_at": data["at"],
                "decided_at": None if awaiting else data["at"],
            }
        if document is None:
            return None
        document.update(
            decision=data["decision"],
            status="decided",
            reason=data["reason"],
            matched_rules=data["matched_rules"],
            decided_at=data["at"],
        )
        return document
