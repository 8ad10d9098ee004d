"""Where the fleet lives: stream ids, and the inline state documents of agents and commands."""

from __future__ import annotations

from typing import Any

from lighthouse.events import EventStore
from lighthouse.events.inline import InlineState
from lighthouse.fleet import logic
from lighthouse.fleet.models import COMMAND_MODEL, FLEET_MODEL, ROLLOUT_MODEL, CommandState, FleetAgentState
from lighthouse.fleet.rollouts import ROLLOUT_FOLD, RolloutState

CREDENTIALS_MODEL = "mqtt-credentials"  # the live credential of each MQTT username (its token id)


def fleet_stream(agent_id: str) -> str:
    return f"fleet#{agent_id}"


def command_stream(request_id: str) -> str:
    return f"fleetcmd#{request_id}"


def fleet_states(client: Any, table: str, events: EventStore) -> InlineState[FleetAgentState]:
    return InlineState(client, table, FLEET_MODEL, logic.FLEET_FOLD, events, key_of=lambda s: s.removeprefix("fleet#"))


def command_states(client: Any, table: str, events: EventStore) -> InlineState[CommandState]:
    return InlineState(
        client, table, COMMAND_MODEL, logic.COMMAND_FOLD, events, key_of=lambda s: s.removeprefix("fleetcmd#")
    )


def rollout_states(client: Any, table: str, events: EventStore) -> InlineState[RolloutState]:
    return InlineState(client, table, ROLLOUT_MODEL, ROLLOUT_FOLD, events, key_of=lambda s: s.removeprefix("rollout#"))
