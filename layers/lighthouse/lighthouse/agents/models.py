"""Agents: request and view models, the agent stream's events, its state and the commands on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lighthouse.events.types import Event

Role = Literal["agent", "expert", "human", "admin"]
AGENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
PROJECT_PATTERN = r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$"
MAX_PROJECTS = 50
MAX_METADATA_BYTES = 4096
DIRECTORY = "agents"  # the read model of every agent (GET /agents)
# The built-in admin whose secret is derived from the master secret (never registered, no stream).
OPERATOR_ID = "lighthouse-operator"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _check_metadata_size(value: dict[str, Any]) -> dict[str, Any]:
    import json

    if len(json.dumps(value)) > MAX_METADATA_BYTES:
        raise ValueError(f"metadata must serialise to at most {MAX_METADATA_BYTES} bytes")
    return value


class SessionRequest(StrictModel):
    agent_id: str = Field(pattern=AGENT_ID_PATTERN)
    timestamp: int = Field(description="Unix seconds when the request was signed")
    nonce: str = Field(pattern=r"^[0-9a-fA-F]{32,128}$", description="at least 128 random bits, hex")
    signature: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex HMAC-SHA256 of agent_id\\ntimestamp\\nnonce")


class SessionResponse(BaseModel):
    token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - a scheme name, not a secret
    agent_id: str
    role: Role
    expires_at: int


class HeartbeatRequest(StrictModel):
    status: Literal["ready", "busy", "idle"] = "ready"
    metadata: dict[str, Any] = Field(default_factory=dict)

    _metadata_size = field_validator("metadata")(_check_metadata_size)


class QueuedHeartbeat(HeartbeatRequest):
    """A heartbeat sent through the presence queue: the token travels in the message."""

    token: str = Field(min_length=1, max_length=2048)


class AgentView(BaseModel):
    agent_id: str
    role: Role
    presence: Literal["online", "offline"]
    status: str | None = None
    last_seen: float | None = None
    registered_at: float
    metadata: dict[str, Any] = Field(default_factory=dict)
    projects: list[str] = Field(default_factory=list, description="projects whose memory and pipelines it may use")


class RegisterAgent(StrictModel):
    agent_id: str = Field(pattern=AGENT_ID_PATTERN, description="unique; letters, digits and . _ : -")
    role: Role = "agent"
    metadata: dict[str, Any] = Field(default_factory=dict)
    projects: list[Annotated[str, Field(pattern=PROJECT_PATTERN)]] = Field(
        default_factory=list, max_length=MAX_PROJECTS
    )

    _metadata_size = field_validator("metadata")(_check_metadata_size)


class AgentRegistration(BaseModel):
    agent_id: str
    role: Role
    secret: str = Field(description="shown once: the agent signs its session requests with it")


class SetProjects(StrictModel):
    projects: list[Annotated[str, Field(pattern=PROJECT_PATTERN)]] = Field(max_length=MAX_PROJECTS)


class AgentPage(BaseModel):
    agents: list[AgentView]
    next_token: str | None = None


class HeartbeatResponse(BaseModel):
    agent_id: str
    presence: Literal["online"] = "online"
    last_seen: float
    next_heartbeat_before: float


# ---- events (the agent stream `agent#<agent_id>`) ------------------------------------------------


class AgentRegistered(Event):
    TYPE: ClassVar[str] = "AGENT_REGISTERED"

    agent_id: str
    role: Role
    salt: str
    registered_at: float
    metadata: dict[str, Any] = Field(default_factory=dict)
    projects: list[str] = Field(default_factory=list)  # absent from events written before projects


class AgentHeartbeat(Event):
    TYPE: ClassVar[str] = "AGENT_HEARTBEAT"

    at: float
    status: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class AgentWentOffline(Event):
    TYPE: ClassVar[str] = "AGENT_WENT_OFFLINE"

    at: float
    last_seen: float | None = None
    reason: str = ""


class AgentProjectsSet(Event):
    TYPE: ClassVar[str] = "AGENT_PROJECTS_SET"

    projects: list[str]
    by: str
    at: float


# ---- state and commands --------------------------------------------------------------------------


class AgentState(BaseModel):
    """An agent as its stream says it is."""

    model_config = ConfigDict(frozen=True)

    agent_id: str = ""
    role: str = ""
    salt: str = ""
    registered_at: float = 0.0
    online: bool = False
    status: str | None = None
    last_seen: float | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    projects: list[str] = Field(default_factory=list)

    @property
    def exists(self) -> bool:
        return bool(self.agent_id)


@dataclass(frozen=True)
class Register:
    agent_id: str
    role: Role
    salt: str
    at: float
    metadata: dict[str, Any]
    projects: list[str]


@dataclass(frozen=True)
class Beat:
    at: float
    status: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class MarkOffline:
    at: float
    cutoff: float  # silent since before this: offline
    reason: str


@dataclass(frozen=True)
class ChangeProjects:
    projects: list[str]
    by: str
    at: float
