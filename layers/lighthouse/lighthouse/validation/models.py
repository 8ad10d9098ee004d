"""Validation: the API's request and view models, the expert vote, Claude Code's hook payloads, and
the events, state and commands of a validation request's stream and of the policy stream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from lighthouse.events.types import Event

MAX_WAIT_SECONDS = 20
MAX_TOOL_INPUT_BYTES = 64 * 1024
Decision = Literal["approved", "blocked", "escalate"]
ExpertDecision = Literal["approve", "block", "modify", "escalate"]


class ValidateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    tool_name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:\-]+$")
    tool_input: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(
        default_factory=dict, description="free-form; `cwd` (the agent's working directory) is used for path checks"
    )


class VoteView(BaseModel):
    expert: str
    decision: ExpertDecision | None = None
    confidence: float | None = None
    reasoning: str | None = None
    concerns: list[str] = Field(default_factory=list)
    suggestions: list[str] = Field(default_factory=list)
    outcome: Literal["voted", "declined", "timed_out", "failed", "withdrawn"] = "voted"
    outlier: bool = False


class ConsensusView(BaseModel):
    reached: bool
    agreement: float
    distribution: dict[str, int]
    outliers: list[str]
    counted: list[str]


class ValidationResult(BaseModel):
    request_id: str
    status: Literal["decided", "awaiting_experts"]
    decision: Decision
    confidence: float = Field(ge=0, le=1)
    reason: str
    matched_rules: list[str]
    expert_required: bool
    cache_hit: bool
    decided_by: Literal["rules", "policy", "fallback", "experts"]
    experts: list[str] = Field(default_factory=list)
    votes: list[VoteView] = Field(default_factory=list)
    consensus: ConsensusView | None = None
    requested_at: float
    decided_at: float | None = None


class AuditEntry(BaseModel):
    request_id: str
    agent: str
    tool_name: str
    decision: Decision | None
    status: Literal["decided", "awaiting_experts"]
    reason: str
    matched_rules: list[str]
    requested_at: float
    decided_at: float | None = None


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_token: str | None = None


class PolicyDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    policies: str = Field(min_length=1, description="Cedar policies, validated against the Lighthouse Cedar schema")


class PolicyView(BaseModel):
    version: int
    policies: str
    updated_by: str | None = None
    updated_at: float | None = None
    schema_: str = Field(alias="schema", description="the Cedar schema every policy is validated against")

    model_config = ConfigDict(populate_by_name=True)


# ---- Claude Code --------------------------------------------------------------------------------


class PreToolUseInput(BaseModel):
    """Claude Code's PreToolUse hook input. Unknown fields are ignored: newer versions add some."""

    model_config = ConfigDict(extra="ignore", strict=True)

    session_id: str | None = None
    transcript_path: str | None = None
    cwd: str | None = None
    permission_mode: str | None = None
    hook_event_name: Literal["PreToolUse"]
    tool_name: str = Field(min_length=1, max_length=200)
    tool_input: dict[str, Any]
    tool_use_id: str | None = None


class PreToolUseDecision(BaseModel):
    hookEventName: Literal["PreToolUse"] = "PreToolUse"
    permissionDecision: Literal["allow", "deny", "ask"]
    permissionDecisionReason: str


class PreToolUseOutput(BaseModel):
    hookSpecificOutput: PreToolUseDecision


HOOK_DECISIONS: dict[str, Literal["allow", "deny", "ask"]] = {"approved": "allow", "blocked": "deny", "escalate": "ask"}


def hook_output(permission: Literal["allow", "deny", "ask"], reason: str) -> PreToolUseOutput:
    return PreToolUseOutput(
        hookSpecificOutput=PreToolUseDecision(permissionDecision=permission, permissionDecisionReason=reason)
    )


# The schema every expert vote must satisfy (it is the schema of the vote's elicitation).
VOTE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["decision", "confidence", "reasoning"],
    "properties": {
        "decision": {"type": "string", "enum": ["approve", "block", "modify", "escalate"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "reasoning": {"type": "string", "minLength": 1, "maxLength": 4000},
        "concerns": {"type": "array", "items": {"type": "string", "maxLength": 1000}, "maxItems": 20},
        "suggestions": {"type": "array", "items": {"type": "string", "maxLength": 1000}, "maxItems": 20},
    },
}


# ---- events: a request's stream `validation#<id>`, and the policy stream ------------------------


class GateRecord(BaseModel):
    """What the rule and policy layers said (the first decision, before any expert)."""

    decision: Decision
    confidence: float
    reason: str
    matched_rules: list[str]
    layer: Literal["rules", "policy", "fallback"]
    cache_hit: bool
    policy_version: int | None = None


class PanelMember(BaseModel):
    id: str
    kind: Literal["agent", "llm"]


class ValidationRequested(Event):
    TYPE: ClassVar[str] = "VALIDATION_REQUESTED"

    request_id: str
    agent: str
    role: str
    tool_name: str
    tool_input: dict[str, Any]
    cwd: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    at: float
    gate: GateRecord
    experts: list[PanelMember] = Field(default_factory=list)
    expert_timeout_seconds: int = 30


class ExpertVoted(Event):
    TYPE: ClassVar[str] = "EXPERT_VOTED"

    request_id: str
    expert: str
    elicitation_id: str | None = None
    outcome: Literal["voted", "declined", "timed_out", "failed", "withdrawn"]
    vote: dict[str, Any] | None = None
    signature: str | None = None
    reason: str | None = None
    at: float


class ConsensusRecord(BaseModel):
    reached: bool
    agreement: float
    distribution: dict[str, int]
    outliers: list[str]
    counted: list[str]


class ValidationCompleted(Event):
    TYPE: ClassVar[str] = "VALIDATION_COMPLETED"

    request_id: str
    agent: str
    requested_at: float
    decision: Decision
    confidence: float
    reason: str
    matched_rules: list[str]
    decided_by: Literal["rules", "policy", "fallback", "experts"]
    consensus: ConsensusRecord | None = None
    early: bool = False
    outliers: list[str] = Field(default_factory=list)
    at: float


class ValidationPolicyUpdated(Event):
    TYPE: ClassVar[str] = "VALIDATION_POLICY_UPDATED"

    policies: str
    by: str
    at: float


# ---- state and commands --------------------------------------------------------------------------


class ValidationState(BaseModel):
    model_config = ConfigDict(frozen=True)

    request: ValidationRequested | None = None
    votes: dict[str, ExpertVoted] = Field(default_factory=dict)
    completed: ValidationCompleted | None = None

    @property
    def exists(self) -> bool:
        return self.request is not None

    @property
    def decided(self) -> bool:
        return self.completed is not None


class PolicyState(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int = 0
    policies: str | None = None
    updated_by: str | None = None
    updated_at: float | None = None


@dataclass(frozen=True)
class Request:
    """Record a request and, when no expert round follows, its decision."""

    requested: ValidationRequested


@dataclass(frozen=True)
class CountVote:
    expert: str
    elicitation_id: str | None
    outcome: Literal["voted", "declined", "timed_out", "failed", "withdrawn"]
    vote: dict[str, Any] | None
    signature: str | None
    reason: str | None
    at: float


@dataclass(frozen=True)
class Conclude:
    final: bool  # the round is over (every expert answered or timed out), not merely settled
    at: float


@dataclass(frozen=True)
class ReplacePolicies:
    policies: str
    by: str
    at: float
    expected_version: int  # the version the admin read: a newer one is a conflict, not an overwrite
