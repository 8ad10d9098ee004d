"""The agent-core MQTT contract (lighthouse.core.v1): topics, payloads and who may use which topic.

Both sides import this module: `lighthouse agent-core` publishes and subscribes by it, the platform
validates what it ingests and sends by it, and the broker's access rules (mosquitto's dynamic
security roles locally, the custom authorizer's IoT policy on AWS) are generated from `agent_acl`,
so the three cannot disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA: Final = "lighthouse.core.v1"
PREFIX = "lighthouse/agents"
AGENT_ID = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}"

# Retained snapshots, each a pure function of the core's state (see agent_core.snapshots).
STATUS = "status"
METADATA = "core/metadata"
STATE = "core/state"
COMPONENTS = "core/components"
CFG_STATE = "core/cfg/state"
# The containers the host's Docker Engine shows (runs' allowlist and service map read it).
INVENTORY = "core/inventory"
SNAPSHOTS = (STATUS, METADATA, STATE, COMPONENTS, CFG_STATE, INVENTORY)

CommandType = Literal["install", "uninstall", "refresh", "cfg_set", "collect"]
COMMAND_TYPES: tuple[CommandType, ...] = ("install", "uninstall", "refresh", "cfg_set", "collect")
# What the platform publishes and the agent subscribes to, by command type.
COMMAND_TOPICS: dict[str, str] = {
    "install": "core/cmd/components/install",
    "uninstall": "core/cmd/components/uninstall",
    "refresh": "core/cmd/refresh",
    "cfg_set": "core/cfg/set",
    "collect": "core/cmd/collect",
}
# What the agent publishes (not retained) once a command has run.
RESULT_TOPICS: dict[str, str] = {
    "install": "core/evt/components/install_result",
    "uninstall": "core/evt/components/uninstall_result",
    "refresh": "core/evt/refresh_result",
    "cfg_set": "core/evt/cfg_set_result",
    "collect": "core/evt/collect_result",
}
COMMAND_OF_TOPIC = {topic: kind for kind, topic in COMMAND_TOPICS.items()}
COMMAND_OF_RESULT = {topic: kind for kind, topic in RESULT_TOPICS.items()}

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
HEARTBEAT_MIN_S, HEARTBEAT_MAX_S = 5, 3600
MAX_PAYLOAD_BYTES = 64 * 1024

_TOPIC = re.compile(rf"^{PREFIX}/(?P<agent>{AGENT_ID})/(?P<suffix>[a-z_/]+)$")


def topic(agent_id: str, suffix: str) -> str:
    return f"{PREFIX}/{agent_id}/{suffix}"


@dataclass(frozen=True)
class Topic:
    agent_id: str
    suffix: str

    @property
    def kind(self) -> Literal["snapshot", "result", "command", "unknown"]:
        if self.suffix in SNAPSHOTS:
            return "snapshot"
        if self.suffix in COMMAND_OF_RESULT:
            return "result"
        if self.suffix in COMMAND_OF_TOPIC:
            return "command"
        return "unknown"


def parse_topic(name: str) -> Topic | None:
    match = _TOPIC.match(name)
    return Topic(match["agent"], match["suffix"]) if match else None


# ---- access: one table for mosquitto's roles and the IoT policy ---------------------------------


@dataclass(frozen=True)
class Acl:
    """Topics an agent may publish to (its snapshots and results, its will among them) and topic
    filters it may subscribe to (its own commands). Nothing else: another agent's prefix, the
    command topics it could forge for itself, and every platform topic are refused."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def agent_acl(agent_id: str) -> Acl:
    return Acl(
        publish=tuple(topic(agent_id, s) for s in (*SNAPSHOTS, *RESULT_TOPICS.values())),
        subscribe=tuple(topic(agent_id, s) for s in COMMAND_TOPICS.values()),
    )


def agent_may_publish(agent_id: str, name: str) -> bool:
    return name in agent_acl(agent_id).publish


def agent_may_subscribe(agent_id: str, topic_filter: str) -> bool:
    """Only its own command topics, literally: a wildcard could reach past them."""
    return topic_filter in agent_acl(agent_id).subscribe


# ---- payloads ---------------------------------------------------------------------------------


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: Literal["lighthouse.core.v1"] = Field(default=SCHEMA, alias="schema")


class Install(Payload):
    request_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{8,128}$")
    component_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    version: str = Field(pattern=r"^[0-9][0-9A-Za-z.+!-]{0,63}$")
    entrypoint: str = Field(pattern=r"^[A-Za-z_][\w.]*(:[A-Za-z_][\w.]*)?$", max_length=200)
    source: str = Field(min_length=1, max_length=4096)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Uninstall(Payload):
    request_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{8,128}$")
    component_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class Refresh(Payload):
    request_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{8,128}$")


class ConfigChange(BaseModel):
    """Keys `core/cfg/set` may change; each validated, nothing else accepted."""

    model_config = ConfigDict(extra="forbid", strict=True)

    telemetry_enabled: bool | None = None
    heartbeat_s: int | None = Field(default=None, ge=HEARTBEAT_MIN_S, le=HEARTBEAT_MAX_S)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] | None = None


class CfgSet(Payload):
    request_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{8,128}$")
    # Validated by the agent (ConfigStore), so a bad key is answered with ok: false and its reasons.
    set: dict[str, Any] = Field(min_length=1, max_length=16)


CollectKind = Literal["logs", "gpu", "inventory"]
MAX_COLLECT_LINES = 5000


class Collect(Payload):
    """Collect data for a run's job and PUT it to `upload_url` (a presigned URL the platform made).

    The agent answers with where it put what: {ok, kind, bytes, sha256, lines?}; the data itself never
    travels over MQTT."""

    request_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{8,128}$")
    kind: CollectKind
    container_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
    since: float | None = Field(default=None, ge=0, description="Unix seconds: logs written since then")
    max_lines: int = Field(default=1000, ge=1, le=MAX_COLLECT_LINES)
    upload_url: str = Field(min_length=8, max_length=4096, pattern=r"^https?://")


COMMAND_MODELS: dict[str, type[Payload]] = {
    "install": Install,
    "uninstall": Uninstall,
    "refresh": Refresh,
    "cfg_set": CfgSet,
    "collect": Collect,
}


class Result(BaseModel):
    """What an agent publishes on a result topic; the command-specific fields ride along."""

    model_config = ConfigDict(extra="allow")

    schema_: Literal["lighthouse.core.v1"] = Field(default=SCHEMA, alias="schema")
    request_id: str = Field(min_length=1, max_length=128)
    ok: bool
    error: str | None = None
    restart_required: bool = False
    noop: bool = False


class Status(BaseModel):
    model_config = ConfigDict(extra="allow")

    schema_: Literal["lighthouse.core.v1"] = Field(default=SCHEMA, alias="schema")
    state: Literal["online", "offline"]
    ts: float | None = None
    heartbeat_s: int | None = None
