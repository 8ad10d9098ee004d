"""The retained snapshots, each a function of the core's state (no clock: the time is passed in;
the inventory asks the host's Docker Engine through the collector)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lighthouse.fleet.contract import SCHEMA


@dataclass(frozen=True)
class Identity:
    agent_id: str
    core_version: str
    platform: str
    python: str
    host: str


@dataclass
class Runtime:
    """What changes while the core runs: when it started, the last command, a pending restart."""

    started_at: float
    last_command: dict[str, Any] | None = None
    restart_pending: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def status(state: str, now: float, heartbeat_s: int) -> dict[str, Any]:
    return {"schema": SCHEMA, "state": state, "ts": now, "heartbeat_s": heartbeat_s}


def offline_will(agent_id: str) -> dict[str, Any]:
    """The last will: the broker publishes it when the connection dies, so it carries no time."""
    return {"schema": SCHEMA, "state": "offline", "agent_id": agent_id, "reason": "connection lost"}


def metadata(identity: Identity) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "agent_id": identity.agent_id,
        "core_version": identity.core_version,
        "platform": identity.platform,
        "python": identity.python,
        "host": identity.host,
    }


def core_state(runtime: Runtime, now: float) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "uptime_s": round(max(0.0, now - runtime.started_at), 3),
        "started_at": runtime.started_at,
        "last_command": runtime.last_command,
        "restart_pending": runtime.restart_pending,
    }


def components(registry: dict[str, dict[str, Any]]) -> dict[str, Any]:
    listed = [
        {key: entry.get(key) for key in ("component_id", "version", "dist_name", "entrypoint", "installed_at")}
        for _, entry in sorted(registry.items())
    ]
    return {"schema": SCHEMA, "count": len(listed), "components": listed}


def cfg_state(config: dict[str, Any]) -> dict[str, Any]:
    return {"schema": SCHEMA, **{key: config[key] for key in sorted(config)}}


def inventory(collector: Any, now: float) -> dict[str, Any]:
    """The containers this host runs, as the Docker Engine API shows them (none without a collector)."""
    if collector is None:
        return {"schema": SCHEMA, "docker": "absent", "containers": [], "ts": now}
    return {**collector.inventory(), "ts": now}
