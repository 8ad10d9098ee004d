"""Fleet: the API's requests and views, the events of `fleet#<agent_id>` (what an agent reports) and
of `fleetcmd#<request_id>` (one command's life), and the states they fold into."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from lighthouse.events.types import Event
from lighthouse.fleet.contract import AGENT_ID, CommandType

FLEET_MODEL = "fleet"  # inline state documents, one per agent: the fleet list and each agent's detail
COMMAND_MODEL = "fleet-commands"  # inline state documents, one per command
ROLLOUT_MODEL = "fleet-rollouts"
TAG = r"^[A-Za-z0-9][A-Za-z0-9_.:=-]{0,63}$"
CommandStatus = Literal["sent", "delivered", "succeeded", "failed", "expired"]
FINAL_STATUSES = ("succeeded", "failed", "expired")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# ---- API -------------------------------------------------------------------------------------


class MqttCredentials(BaseModel):
    mqtt_url: str
    username: str
    password: str = Field(description="valid until expires_at; a new request replaces it")
    client_id: str = Field(description="the broker accepts this credential only with this client id")
    expires_at: int


class SendCommand(BaseModel):
    """`type` picks the command; its other fields are checked against schemas/fleet/<type>.json."""

    model_config = ConfigDict(extra="allow")

    type: CommandType
    ttl_seconds: int = Field(default=600, ge=5, le=7 * 86400, description="how long an offline agent is waited for")


class CommandAccepted(BaseModel):
    request_id: str
    agent_id: str
    status: CommandStatus


class CommandView(BaseModel):
    request_id: str
    agent_id: str
    type: str
    status: CommandStatus
    payload: dict[str, Any]
    by: str
    sent_at: float
    expires_at: float
    delivered_at: float | None = None
    completed_at: float | None = None
    result: dict[str, Any] | None = None
    rollout_id: str | None = None


class FleetAgentView(BaseModel):
    agent_id: str
    presence: Literal["online", "offline", "unknown"]
    last_seen: float | None = None
    core_version: str | None = None
    component_count: int = 0
    components: list[str] = Field(default_factory=list, description="component_id@version")
    tags: list[str] = Field(default_factory=list)
    violations: int = 0


class FleetAgentDetail(FleetAgentView):
    snapshots: dict[str, Any] = Field(default_factory=dict, description="the latest of each retained snapshot")


class FleetPage(BaseModel):
    agents: list[FleetAgentView]
    next_token: str | None = None


class ComponentUpload(StrictModel):
    filename: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,150}\.whl$", description="the wheel's file name (it names the dist)"
    )


class ComponentUploadUrl(BaseModel):
    upload_url: str = Field(description="PUT the wheel's bytes here before expires_in seconds pass")
    source: str = Field(description="what an install command's `source` then says")
    expires_in: int


class SetTags(StrictModel):
    tags: list[str] = Field(max_length=32)


class Selector(StrictModel):
    agent_ids: list[str] = Field(default_factory=list, max_length=10_000)
    tags: list[str] = Field(default_factory=list, max_length=32, description="agents with every one of these tags")


class StartRollout(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: dict[str, Any] = Field(description="a command as POST /fleet/agents/{id}/commands takes it")
    selector: Selector
    batch_size: int = Field(default=10, ge=1, le=1000)
    max_failure_percent: float = Field(default=10.0, ge=0, le=100)
    batch_timeout_seconds: int = Field(default=300, ge=5, le=86400)


# ---- events of an agent's fleet stream -------------------------------------------------------


class FleetSnapshotRecorded(Event):
    TYPE: ClassVar[str] = "FLEET_SNAPSHOT_RECORDED"

    name: str
    payload: dict[str, Any]
    at: float


class FleetPresenceChanged(Event):
    TYPE: ClassVar[str] = "FLEET_PRESENCE_CHANGED"

    state: Literal["online", "offline"]
    at: float
    reason: str = ""


class FleetSecurityViolation(Event):
    TYPE: ClassVar[str] = "FLEET_SECURITY_VIOLATION"

    topic: str
    reason: str
    at: float
    request_id: str | None = None


class FleetTagsSet(Event):
    TYPE: ClassVar[str] = "FLEET_TAGS_SET"

    tags: list[str]
    by: str
    at: float


# ---- events of a command's stream ------------------------------------------------------------


class FleetCommandSent(Event):
    TYPE: ClassVar[str] = "FLEET_COMMAND_SENT"

    request_id: str
    agent_id: str
    type: str
    payload: dict[str, Any]
    by: str
    at: float
    expires_at: float
    rollout_id: str | None = None


class FleetCommandDelivered(Event):
    TYPE: ClassVar[str] = "FLEET_COMMAND_DELIVERED"

    at: float


class FleetCommandCompleted(Event):
    TYPE: ClassVar[str] = "FLEET_COMMAND_COMPLETED"

    ok: bool
    result: dict[str, Any]
    at: float


class FleetCommandExpired(Event):
    TYPE: ClassVar[str] = "FLEET_COMMAND_EXPIRED"

    at: float
    reason: str


# ---- states ----------------------------------------------------------------------------------


class FleetAgentState(BaseModel):
    agent_id: str = ""
    presence: Literal["online", "offline", "unknown"] = "unknown"
    presence_at: float | None = None
    snapshots: dict[str, dict[str, Any]] = Field(default_factory=dict)
    recorded_at: dict[str, float] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    violations: int = 0


class CommandState(BaseModel):
    request_id: str = ""
    agent_id: str = ""
    type: str = ""
    payload: dict[str, Any] = Field(default_factory=dict)
    by: str = ""
    status: CommandStatus = "sent"
    sent_at: float = 0.0
    expires_at: float = 0.0
    delivered_at: float | None = None
    completed_at: float | None = None
    result: dict[str, Any] | None = None
    rollout_id: str | None = None

    @property
    def exists(self) -> bool:
        return bool(self.request_id)


# ---- commands on the streams (what the service hands to logic) ------------------------------


@dataclass(frozen=True)
class Observe:
    """A retained snapshot as the broker delivered it. A status heartbeat that changes nothing is
    recorded once `status_every` seconds have passed since the last one recorded."""

    agent_id: str
    name: str
    payload: dict[str, Any]
    at: float
    status_every: float = 300.0


@dataclass(frozen=True)
class Report:
    """One message an agent published, as a topic rule forwarded it."""

    topic: str
    payload: Any
    at: float


@dataclass(frozen=True)
class Issue:
    request_id: str
    agent_id: str
    type: str
    payload: dict[str, Any]
    by: str
    at: float
    expires_at: float
    rollout_id: str | None


@dataclass(frozen=True)
class Answer:
    agent_id: str
    type: str
    result: dict[str, Any]
    at: float


AGENT_ID_PATTERN = f"^{AGENT_ID}$"
