"""Elicitation: the API's request and view models, the stream's events, its state and commands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lighthouse.agents.models import AGENT_ID_PATTERN
from lighthouse.events.types import Event

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
    cursor: str = Field(description="pass as `after` to list (and wait for) only questions this page had not seen")


class AnsweredElicitation(BaseModel):
    elicitation_id: str
    from_agent: str
    message: str
    status: str
    finished_at: float | None
    response: SignedResponse
    signature_valid: bool = Field(description="the response's signature verified with the elicitation's key")


class AnsweredPage(BaseModel):
    elicitations: list[AnsweredElicitation]
    next_token: str | None = None


class ElicitationMetrics(BaseModel):
    counts: dict[str, int]
    answer_latency_ms: dict[str, float | None]
    expiries: int
    rate_limit_rejections: dict[str, int]
    security_violations: int
    note: str = "latency percentiles are the upper bounds of histogram buckets"


# ---- events (stream `elicitation#<id>`; violations in `violation#<id>`) -------------------------


class ElicitationRequested(Event):
    TYPE: ClassVar[str] = "ELICITATION_REQUESTED"

    elicitation_id: str
    from_agent: str
    to_agent: str
    message: str
    schema_: dict[str, Any] = Field(alias="schema")
    priority: Priority
    salt: str
    created_at: float
    expires_at: float
    # The execution that owns this question's wait (a validation round's vote), if not its own.
    managed_by: str | None = None


class ElicitationAccepted(Event):
    TYPE: ClassVar[str] = "ELICITATION_ACCEPTED"

    at: float
    to_agent: str
    response: SignedResponse


class ElicitationDeclined(Event):
    TYPE: ClassVar[str] = "ELICITATION_DECLINED"

    at: float
    to_agent: str
    response: SignedResponse


class ElicitationCancelled(Event):
    TYPE: ClassVar[str] = "ELICITATION_CANCELLED"

    at: float
    to_agent: str
    by: str


class ElicitationExpired(Event):
    TYPE: ClassVar[str] = "ELICITATION_EXPIRED"

    at: float
    to_agent: str


class ElicitationSecurityViolation(Event):
    TYPE: ClassVar[str] = "ELICITATION_SECURITY_VIOLATION"

    agent: str
    elicitation_id: str
    kind: str
    at: float


Ending = ElicitationAccepted | ElicitationDeclined | ElicitationCancelled | ElicitationExpired
FINAL_STATUS: dict[type[Event], Status] = {
    ElicitationAccepted: "accepted",
    ElicitationDeclined: "declined",
    ElicitationCancelled: "cancelled",
    ElicitationExpired: "expired",
}


# ---- state and commands --------------------------------------------------------------------------


class ElicitationState(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    elicitation_id: str = ""
    from_agent: str = ""
    to_agent: str = ""
    message: str = ""
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    priority: Priority = "normal"
    salt: str = ""
    created_at: float = 0.0
    expires_at: float = 0.0
    managed_by: str | None = None
    status: Status = "pending"
    finished_at: float | None = None
    response: SignedResponse | None = None
    # Not from the stream: the task token of the execution waiting for the end, kept beside the
    # state in its read model (see elicitation.store) so that whoever ends it resumes the wait.
    task_token: str | None = None

    @property
    def exists(self) -> bool:
        return bool(self.elicitation_id)

    @property
    def final(self) -> bool:
        return self.status != "pending"


@dataclass(frozen=True)
class Ask:
    elicitation_id: str
    from_agent: str
    to_agent: str
    message: str
    schema: dict[str, Any]
    priority: Priority
    salt: str
    at: float
    timeout_seconds: int
    managed_by: str | None = None


@dataclass(frozen=True)
class Answer:
    responder: str
    response: SignedResponse
    at: float


@dataclass(frozen=True)
class End:
    """Cancel (by the requester), withdraw (by the platform) or expire (by its deadline)."""

    kind: Literal["cancel", "withdraw", "expire"]
    by: str
    at: float
