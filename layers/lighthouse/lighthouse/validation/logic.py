"""Validation decisions, the folds of a request's stream and of the policy stream, and the audit
read model: pure functions, no I/O, no clock."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from lighthouse.errors import AlreadyExists, Conflict, NotFound
from lighthouse.events.model import StoredEvent
from lighthouse.events.types import Event
from lighthouse.validation.consensus import Vote, consensus
from lighthouse.validation.models import (
    AuditEntry,
    Conclude,
    ConsensusRecord,
    ConsensusView,
    CountVote,
    ExpertVoted,
    PolicyState,
    ReplacePolicies,
    Request,
    ValidationCompleted,
    ValidationPolicyUpdated,
    ValidationRequested,
    ValidationResult,
    ValidationState,
    VoteView,
)

AUDIT_MODEL = "validation-audit"
STORED_STRING_CHARS = 2000
# Newest first in the audit read model: keys count down from this many milliseconds.
_KEY_EPOCH_MS = 10**13


class ValidationFold:
    name = "validation-v2"
    snapshots = False  # a request, a vote per expert, a conclusion

    def initial(self) -> ValidationState:
        return ValidationState()

    def evolve(self, state: ValidationState, stored: StoredEvent) -> ValidationState:
        event = stored.event
        if isinstance(event, ValidationRequested):
            return ValidationState(request=event)
        if isinstance(event, ExpertVoted):
            return state.model_copy(update={"votes": {**state.votes, event.expert: event}})
        if isinstance(event, ValidationCompleted):
            return state.model_copy(update={"completed": event})
        return state

    def to_snapshot(self, state: ValidationState) -> dict[str, Any]:
        return state.model_dump(mode="json")

    def from_snapshot(self, data: dict[str, Any]) -> ValidationState:
        return ValidationState.model_validate(data)


FOLD = ValidationFold()


def request(state: ValidationState, command: Request) -> list[Event]:
    """The request, and its decision at once when no expert round follows."""
    if state.exists:
        raise AlreadyExists(f"validation request {command.requested.request_id!r} exists")
    requested = command.requested
    if requested.experts:
        return [requested]
    gate = requested.gate
    completed = ValidationCompleted(
        request_id=requested.request_id,
        agent=requested.agent,
        requested_at=requested.at,
        decision=gate.decision,
        confidence=gate.confidence,
        reason=gate.reason,
        matched_rules=gate.matched_rules,
        decided_by=gate.layer,
        at=requested.at,
    )
    return [requested, completed]


def count_vote(state: ValidationState, command: CountVote) -> list[Event]:
    """An expert's vote (or its absence), once: a retried step finds it counted and adds nothing."""
    if state.request is None:
        raise NotFound("no such validation request")
    if command.expert in state.votes:
        return []
    return [
        ExpertVoted(
            request_id=state.request.request_id,
            expert=command.expert,
            elicitation_id=command.elicitation_id,
            outcome=command.outcome,
            vote=command.vote,
            signature=command.signature,
            reason=command.reason,
            at=command.at,
        )
    ]


def conclude(state: ValidationState, command: Conclude) -> list[Event]:
    """The experts' decision: when the round is over, or as soon as no missing vote can change it."""
    if state.request is None:
        raise NotFound("no such validation request")
    if state.decided:
        return []
    votes = counted_votes(state)
    if not command.final and not settled(votes, len(state.request.experts)):
        return []
    result = consensus(votes)
    return [
        ValidationCompleted(
            request_id=state.request.request_id,
            agent=state.request.agent,
            requested_at=state.request.at,
            decision=result.decision,
            confidence=result.confidence,
            reason=f"experts: {result.reason}",
            matched_rules=list(state.request.gate.matched_rules),
            decided_by="experts",
            consensus=ConsensusRecord(
                reached=result.reached,
                agreement=result.agreement,
                distribution=result.distribution,
                outliers=list(result.outliers),
                counted=list(result.counted),
            ),
            early=not command.final,
            outliers=list(result.outliers),
            at=command.at,
        )
    ]


def counted_votes(state: ValidationState) -> list[Vote]:
    return [
        Vote(
            expert=expert,
            decision=record.vote["decision"],
            confidence=float(record.vote["confidence"]),
            reasoning=str(record.vote.get("reasoning", "")),
            suggestions=tuple(record.vote.get("suggestions", [])),
        )
        for expert, record in state.votes.items()
        if record.outcome == "voted" and record.vote
    ]


def settled(votes: Sequence[Vote], panel_size: int) -> bool:
    """True when no set of remaining votes can change the outcome: one decision already holds 2/3
    of the whole panel."""
    counts: dict[str, int] = {}
    for vote in votes:
        counts[vote.decision] = counts.get(vote.decision, 0) + 1
    return any(3 * count >= 2 * panel_size for count in counts.values())


def open_experts(state: ValidationState) -> list[str]:
    """Agent experts on the panel who have not answered: released once the outcome is settled."""
    if state.request is None:
        return []
    return [m.id for m in state.request.experts if m.kind == "agent" and m.id not in state.votes]


def vote_elicitation_id(request_id: str, expert: str) -> str:
    """Deterministic, so a retried step finds the vote it already asked for."""
    return hashlib.sha256(f"vote\x00{request_id}\x00{expert}".encode()).hexdigest()[:32]


def question(requested: ValidationRequested) -> str:
    summary = json.dumps(requested.tool_input, sort_keys=True)[:2000]
    return (
        f"Validation request {requested.request_id}: agent {requested.agent} ({requested.role}) wants to run "
        f"{requested.tool_name} with {summary} in {requested.cwd or 'an unknown directory'}. "
        f"The gate said: {requested.gate.reason}. Vote approve, block, modify or escalate."
    )


def for_the_record(value: Any) -> Any:
    """Long strings (file contents) are stored as their length and hash, not in full."""
    if isinstance(value, str) and len(value) > STORED_STRING_CHARS:
        return {"truncated": True, "length": len(value), "sha256": hashlib.sha256(value.encode()).hexdigest()}
    if isinstance(value, dict):
        return {k: for_the_record(v) for k, v in value.items()}
    if isinstance(value, list):
        return [for_the_record(v) for v in value]
    return value


def result_view(state: ValidationState) -> ValidationResult:
    requested, completed = state.request, state.completed
    assert requested is not None
    outliers = set(completed.outliers) if completed else set()
    votes = [_vote_view(expert, record, expert in outliers) for expert, record in state.votes.items()]
    source = completed or requested.gate
    return ValidationResult(
        request_id=requested.request_id,
        decision=source.decision,
        confidence=source.confidence,
        reason=source.reason,
        matched_rules=source.matched_rules,
        expert_required=bool(requested.experts),
        cache_hit=requested.gate.cache_hit,
        experts=[member.id for member in requested.experts],
        votes=votes,
        requested_at=requested.at,
        **_completion(requested, completed),
    )


def _completion(requested: ValidationRequested, completed: ValidationCompleted | None) -> dict[str, Any]:
    """The fields that depend on whether the experts have decided yet."""
    if completed is None:
        return {"status": "awaiting_experts", "decided_by": requested.gate.layer, "consensus": None, "decided_at": None}
    consensus = ConsensusView(**completed.consensus.model_dump()) if completed.consensus else None
    return {"status": "decided", "decided_by": completed.decided_by, "consensus": consensus, "decided_at": completed.at}


def _vote_view(expert: str, record: ExpertVoted, outlier: bool) -> VoteView:
    vote = record.vote or {}
    return VoteView(
        expert=expert,
        decision=vote.get("decision"),
        confidence=vote.get("confidence"),
        reasoning=vote.get("reasoning") or record.reason,
        concerns=list(vote.get("concerns", [])),
        suggestions=list(vote.get("suggestions", [])),
        outcome=record.outcome,
        outlier=outlier,
    )


# ---- the policy stream ---------------------------------------------------------------------------


class PolicyFold:
    name = "validation-policy-v2"
    snapshots = True  # every policy change is kept

    def initial(self) -> PolicyState:
        return PolicyState()

    def evolve(self, state: PolicyState, stored: StoredEvent) -> PolicyState:
        event = stored.event
        if isinstance(event, ValidationPolicyUpdated):
            return PolicyState(
                version=stored.version, policies=event.policies, updated_by=event.by, updated_at=event.at
            )
        return state

    def to_snapshot(self, state: PolicyState) -> dict[str, Any]:
        return state.model_dump()

    def from_snapshot(self, data: dict[str, Any]) -> PolicyState:
        return PolicyState.model_validate(data)


POLICY_FOLD = PolicyFold()


def replace_policies(state: PolicyState, command: ReplacePolicies) -> list[Event]:
    if state.version != command.expected_version:
        raise Conflict("the policies changed meanwhile; read them again and retry")
    return [ValidationPolicyUpdated(policies=command.policies, by=command.by, at=command.at)]


# ---- the audit read model ----------------------------------------------------------------------


def audit_key(requested_at: float, request_id: str) -> str:
    return f"{_KEY_EPOCH_MS - int(requested_at * 1000):013d}#{request_id}"


EVERY_AGENT = "*"  # not an agent id (ids cannot hold `*`): the audit of all agents together


def audit_model(agent: str) -> str:
    return f"{AUDIT_MODEL}#{agent}"


def audit_entry(state: ValidationState) -> AuditEntry | None:
    """The requester's audit entry for a request (read model `validation-audit#<agent>`, newest first)."""
    requested, completed = state.request, state.completed
    if requested is None:
        return None
    if completed is not None:
        return AuditEntry(
            request_id=requested.request_id,
            agent=requested.agent,
            tool_name=requested.tool_name,
            decision=completed.decision,
            status="decided",
            reason=completed.reason,
            matched_rules=completed.matched_rules,
            requested_at=requested.at,
            decided_at=completed.at,
        )
    awaiting = bool(requested.experts)
    return AuditEntry(
        request_id=requested.request_id,
        agent=requested.agent,
        tool_name=requested.tool_name,
        decision=None if awaiting else requested.gate.decision,
        status="awaiting_experts" if awaiting else "decided",
        reason=requested.gate.reason,
        matched_rules=requested.gate.matched_rules,
        requested_at=requested.at,
        decided_at=None if awaiting else requested.at,
    )
