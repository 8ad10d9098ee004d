"""Request and view models of the elicitation API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lighthouse.agents.models import AGENT_ID_PATTERN

MAX_TIMEOUT_SECONDS = 86_400
MAX_WAIT_SECONDS = 20
Priority = Literal["normal", "urgent"]
Status = Literal["pending", "accepted", "declined", "cancelled", "expired"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CreateElicitation(_Strict):
    to_agent: str = Field(pattern=AGENT_ID_PATTERN)
    message: str = Field(min_length=1)
    schema_: dict[str, Any] = Field(alias="schema", description="JSON Schema (2020-12) the answer must satisfy")
    timeout_seconds: int = Field(default=300, ge=1, le=MAX_TIMEOUT_SECONDS)
    priority: Priority = "normal"

    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)


class CreatedElicitation(BaseModel):
    elicitation_id: str
    status: Literal["pending"] = "pending"
    expires_at: float
    response_key: str = Field(description="hex HMAC key: verify the signature of the answer with it")


class RespondToElicitation(_Strict):
    elicitation_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    action: Literal["accept", "decline"]
    data: Any = None
    nonce: str = Field(pattern=r"^[0-9a-fA-F]{32,128}$", description="fresh random hex; a reused nonce is a replay")

    @model_validator(mode="after")
    def _accept_needs_data(self) -> RespondToElicitation:
        if self.action == "accept" and self.data is None:
            raise ValueError("accept needs `data` matching the elicitation's schema")
        if self.action == "decline" and self.data is not None:
            raise ValueError("decline carries no `data`")
        return self


class SignedResponse(BaseModel):
    action: Literal["accept", "decline"]
    responder: str
    data: Any = None
    data_hash: str
    responded_at: float
    responded_at_ms: int
    latency_ms: float
    nonce: str
    signature: str


class RespondResult(BaseModel):
    elicitation_id: str
    status: Literal["accepted", "declined"]
    responded_at: float


class ElicitationView(BaseModel):
    elicitation_id: str
    from_agent: str
    to_agent: str
    message: str
    schema_: dict[str, Any] = Field(alias="schema", serialization_alias="schema")
    priority: Priority
    status: Status
    created_at: float
    expires_at: float
    finished_at: float | None = None
    response: SignedResponse | None = Field(default=None, description="only for the requester")

    model_config = ConfigDict(populate_by_name=True)


class PendingElicitation(BaseModel):
    elicitation_id: str
    from_agent: str
    message: str
    schema_: dict[str, Any] = Field(alias="schema", serialization_alias="schema")
    priority: Priority
    created_at: float
    expires_at: float

    model_config = ConfigDict(populate_by_name=True)


class PendingPage(BaseModel):
    elicitations: list[PendingElicitation]
    next_token: str | None = None


class ElicitationMetrics(BaseModel):
    counts: dict[str, int]
    answer_latency_ms: dict[str, float | None]
    expiries: int
    rate_limit_rejections: dict[str, int]
    security_violations: int
    note: str = "latency percentiles are the upper bounds of histogram buckets"
