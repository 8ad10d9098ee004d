"""Request and view models of the validation API, the expert vote, and Claude Code's hook payloads."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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


class HookToken(BaseModel):
    agent_id: str
    hook_token: str
    expires_at: int


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
