"""Agent decisions and folds: pure functions of a state and a command (no I/O, no clock)."""

from __future__ import annotations

from typing import Any

from lighthouse.agents.models import (
    DIRECTORY,
    AgentHeartbeat,
    AgentProjectsSet,
    AgentRegistered,
    AgentState,
    AgentWentOffline,
    Beat,
    ChangeProjects,
    MarkOffline,
    Register,
)
from lighthouse.errors import AlreadyExists, NotFound
from lighthouse.events.model import StoredEvent
from lighthouse.events.types import Event


class AgentFold:
    """The agent stream folded into an AgentState. v2: agents belong to projects."""

    name = "agent-v2"
    snapshots = True  # a heartbeat every 30 s makes long streams

    def initial(self) -> AgentState:
        return AgentState()

    def evolve(self, state: AgentState, stored: StoredEvent) -> AgentState:
        event = stored.event
        if isinstance(event, AgentRegistered):
            return AgentState(
                agent_id=event.agent_id,
                role=event.role,
                salt=event.salt,
                registered_at=event.registered_at,
                metadata=dict(event.metadata),
                projects=list(event.projects),
            )
        if isinstance(event, AgentHeartbeat):
            return state.model_copy(
                update={
                    "online": True,
                    "status": event.status,
                    "last_seen": event.at,
                    "metadata": {**state.metadata, **event.metadata},
                }
            )
        if isinstance(event, AgentWentOffline):
            return state.model_copy(update={"online": False})
        if isinstance(event, AgentProjectsSet):
            return state.model_copy(update={"projects": list(event.projects)})
        return state

    def to_snapshot(self, state: AgentState) -> dict[str, Any]:
        return state.model_dump(mode="json")

    def from_snapshot(self, data: dict[str, Any]) -> AgentState:
        return AgentState.model_validate(data)


FOLD = AgentFold()


def register(state: AgentState, command: Register) -> list[Event]:
    if state.exists:
        raise AlreadyExists(f"agent {command.agent_id!r} is already registered")
    return [
        AgentRegistered(
            agent_id=command.agent_id,
            role=command.role,
            salt=command.salt,
            registered_at=command.at,
            metadata=command.metadata,
            projects=sorted(set(command.projects)),
        )
    ]


def beat(state: AgentState, command: Beat) -> list[Event]:
    if not state.exists:
        raise NotFound("this agent is not registered")
    return [AgentHeartbeat(at=command.at, status=command.status, metadata=command.metadata)]


def mark_offline(state: AgentState, command: MarkOffline) -> list[Event]:
    """The agent's last will, unless it is offline already or has been heard from since the cutoff."""
    if not state.online or (state.last_seen or 0) >= command.cutoff:
        return []
    return [AgentWentOffline(at=command.at, last_seen=state.last_seen, reason=command.reason)]


def change_projects(state: AgentState, command: ChangeProjects) -> list[Event]:
    if not state.exists:
        raise NotFound("this agent is not registered")
    return [AgentProjectsSet(projects=sorted(set(command.projects)), by=command.by, at=command.at)]


# ---- the directory read model -----------------------------------------------------------------


class AgentDirectoryProjection:
    """Read model `agents`: one document per agent, what GET /agents serves."""

    name = DIRECTORY
    events: tuple[type[Event], ...] = (AgentRegistered, AgentHeartbeat, AgentWentOffline, AgentProjectsSet)

    def handles(self, stored: StoredEvent) -> bool:
        return isinstance(stored.event, self.events)

    def locate(self, stored: StoredEvent) -> tuple[str, str]:
        return self.name, stored.stream_id.removeprefix("agent#")

    def apply(self, document: dict[str, Any] | None, stored: StoredEvent) -> dict[str, Any] | None:
        event = stored.event
        if isinstance(event, AgentRegistered):
            return {
                "agent_id": event.agent_id,
                "role": event.role,
                "presence": "offline",
                "status": None,
                "last_seen": None,
                "registered_at": event.registered_at,
                "metadata": event.metadata,
                "projects": event.projects,
            }
        if document is None:
            return None
        if isinstance(event, AgentHeartbeat):
            document.update(presence="online", status=event.status, last_seen=event.at)
            document["metadata"] = {**document.get("metadata", {}), **event.metadata}
        elif isinstance(event, AgentWentOffline):
            document.update(presence="offline", went_offline_at=event.at)
        elif isinstance(event, AgentProjectsSet):
            document["projects"] = list(event.projects)
        return document
