"""Fleet decisions (pure): which snapshot is news, how a command moves from sent to its end, which
result is a security violation, and the views of both streams."""

from __future__ import annotations

from typing import Any, Literal

from lighthouse.errors import Conflict
from lighthouse.events.model import StoredEvent
from lighthouse.events.types import Event
from lighthouse.fleet import contract
from lighthouse.fleet.models import (
    FINAL_STATUSES,
    Answer,
    CommandState,
    CommandView,
    FleetAgentDetail,
    FleetAgentState,
    FleetAgentView,
    FleetCommandCompleted,
    FleetCommandDelivered,
    FleetCommandExpired,
    FleetCommandSent,
    FleetPresenceChanged,
    FleetSecurityViolation,
    FleetSnapshotRecorded,
    FleetTagsSet,
    Issue,
    Observe,
)


class FleetFold:
    name = "fleet-agent-v1"
    snapshots = True

    def initial(self) -> FleetAgentState:
        return FleetAgentState()

    def evolve(self, state: FleetAgentState, stored: StoredEvent) -> FleetAgentState:
        event = stored.event
        agent_id = stored.stream_id.removeprefix("fleet#")
        if isinstance(event, FleetSnapshotRecorded):
            return state.model_copy(
                update={
                    "agent_id": agent_id,
                    "snapshots": {**state.snapshots, event.name: event.payload},
                    "recorded_at": {**state.recorded_at, event.name: event.at},
                }
            )
        if isinstance(event, FleetPresenceChanged):
            return state.model_copy(update={"agent_id": agent_id, "presence": event.state, "presence_at": event.at})
        if isinstance(event, FleetSecurityViolation):
            return state.model_copy(update={"agent_id": agent_id, "violations": state.violations + 1})
        if isinstance(event, FleetTagsSet):
            return state.model_copy(update={"agent_id": agent_id, "tags": event.tags})
        return state

    def to_snapshot(self, state: FleetAgentState) -> dict[str, Any]:
        return state.model_dump(mode="json")

    def from_snapshot(self, data: dict[str, Any]) -> FleetAgentState:
        return FleetAgentState.model_validate(data)


class CommandFold:
    name = "fleet-command-v1"
    snapshots = False

    def initial(self) -> CommandState:
        return CommandState()

    def evolve(self, state: CommandState, stored: StoredEvent) -> CommandState:
        event = stored.event
        if isinstance(event, FleetCommandSent):
            return CommandState(
                request_id=event.request_id,
                agent_id=event.agent_id,
                type=event.type,
                payload=event.payload,
                by=event.by,
                sent_at=event.at,
                expires_at=event.expires_at,
                rollout_id=event.rollout_id,
            )
        if isinstance(event, FleetCommandDelivered):
            return state.model_copy(update={"status": "delivered", "delivered_at": event.at})
        if isinstance(event, FleetCommandCompleted):
            status = "succeeded" if event.ok else "failed"
            return state.model_copy(update={"status": status, "completed_at": event.at, "result": event.result})
        if isinstance(event, FleetCommandExpired):
            return state.model_copy(update={"status": "expired", "completed_at": event.at})
        return state

    def to_snapshot(self, state: CommandState) -> dict[str, Any]:
        return state.model_dump(mode="json")

    def from_snapshot(self, data: dict[str, Any]) -> CommandState:
        return CommandState.model_validate(data)


FLEET_FOLD = FleetFold()
COMMAND_FOLD = CommandFold()


# ---- an agent's reports ---------------------------------------------------------------------


def observe(state: FleetAgentState, command: Observe) -> list[Event]:
    """Events for a snapshot as delivered: nothing when it says what the last one said."""
    payload = command.payload
    if command.at < state.recorded_at.get(command.name, 0.0):
        return []  # delivered out of order: older than what is recorded
    if command.name != contract.STATUS:
        if state.snapshots.get(command.name) == payload:
            return []
        return [FleetSnapshotRecorded(name=command.name, payload=payload, at=command.at)]
    presence: Literal["online", "offline"] = "online" if payload.get("state") == "online" else "offline"
    events: list[Event] = []
    if presence != state.presence:
        events.append(FleetPresenceChanged(state=presence, at=command.at, reason=str(payload.get("reason", ""))))
    last = state.snapshots.get(contract.STATUS, {})
    stale = command.at - state.recorded_at.get(contract.STATUS, 0.0) >= command.status_every
    if events or last.get("heartbeat_s") != payload.get("heartbeat_s") or stale:
        events.append(FleetSnapshotRecorded(name=contract.STATUS, payload=payload, at=command.at))
    return events


def observe_all(state: FleetAgentState, commands: list[Observe]) -> list[Event]:
    """`observe` of each in turn, each on the state the ones before it lead to: one append for a
    burst of snapshots (an agent publishes all five at once)."""
    events: list[Event] = []
    stream = f"fleet#{commands[0].agent_id}" if commands else "fleet#"
    for command in commands:
        for event in observe(state, command):
            events.append(event)
            state = FLEET_FOLD.evolve(state, StoredEvent(stream, 0, event, "", command.at))
    return events


def set_tags(state: FleetAgentState, command: FleetTagsSet) -> list[Event]:
    tags = sorted(set(command.tags))
    return [] if tags == state.tags else [command.model_copy(update={"tags": tags})]


def violation(state: FleetAgentState, command: FleetSecurityViolation) -> list[Event]:
    return [command]


# ---- a command's life -----------------------------------------------------------------------


def issue(state: CommandState, command: Issue) -> list[Event]:
    if state.exists:
        raise Conflict(f"request id {command.request_id!r} is in use")
    return [
        FleetCommandSent(
            request_id=command.request_id,
            agent_id=command.agent_id,
            type=command.type,
            payload=command.payload,
            by=command.by,
            at=command.at,
            expires_at=command.expires_at,
            rollout_id=command.rollout_id,
        )
    ]


def deliver(state: CommandState, at: float) -> list[Event]:
    return [FleetCommandDelivered(at=at)] if state.status == "sent" else []


def expire(state: CommandState, at: float) -> list[Event]:
    """A command still open at its deadline expires; a finished one, or one never sent, does not
    (a deadline execution can outlive what it was started for, e.g. a test cloud it belonged to)."""
    if not state.exists or state.status in FINAL_STATUSES:
        return []
    reason = "the agent did not come online" if state.status == "sent" else "the agent did not answer"
    return [FleetCommandExpired(at=at, reason=f"{reason} within the command's ttl")]


def mismatch(state: CommandState, answer: Answer) -> str | None:
    """Why `answer` is not a result of this command (None: it is)."""
    if not state.exists:
        return "no command with this request id was sent"
    if state.agent_id != answer.agent_id:
        return f"the command was sent to {state.agent_id!r}, not to this agent"
    if state.type != answer.type:
        return f"the command was a {state.type}, this is a {answer.type} result"
    return None


def complete(state: CommandState, answer: Answer) -> list[Event]:
    """The first result decides; a repeat (the agent answering a redelivery) changes nothing, and
    neither does a result after the command expired (its ttl said how long the answer mattered)."""
    if state.status in FINAL_STATUSES:
        return []
    return [FleetCommandCompleted(ok=bool(answer.result.get("ok")), result=answer.result, at=answer.at)]


# ---- views ----------------------------------------------------------------------------------


def agent_view(state: FleetAgentState, detail: bool = False) -> FleetAgentView:
    components = state.snapshots.get(contract.COMPONENTS, {}).get("components") or []
    status = state.snapshots.get(contract.STATUS, {})
    fields: dict[str, Any] = {
        "agent_id": state.agent_id,
        "presence": state.presence,
        "last_seen": status.get("ts") if state.presence == "online" else state.presence_at,
        "core_version": state.snapshots.get(contract.METADATA, {}).get("core_version"),
        "component_count": len(components),
        "components": [f"{c.get('component_id')}@{c.get('version')}" for c in components if isinstance(c, dict)],
        "tags": state.tags,
        "violations": state.violations,
    }
    if detail:
        return FleetAgentDetail(**fields, snapshots=state.snapshots)
    return FleetAgentView(**fields)


def matches(view: FleetAgentView, status: str | None, component: str | None, tag: str | None) -> bool:
    if status and view.presence != status:
        return False
    if component and not any(c.split("@")[0] == component for c in view.components):
        return False
    return not (tag and tag not in view.tags)


def command_view(state: CommandState) -> CommandView:
    return CommandView(**state.model_dump(exclude={"status"}), status=state.status)
