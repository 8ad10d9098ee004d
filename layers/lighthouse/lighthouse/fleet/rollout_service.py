"""Rollouts as a service: start one (the agents its selector names, a Step Functions execution),
send a batch, settle a batch, and show progress. The state machine (infra/statemachines/
fleet_rollout.asl.json) calls `send_batch` and `check` in turn, pausing between checks."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from lighthouse.auth.tokens import Principal
from lighthouse.clock import Clock
from lighthouse.errors import LighthouseError, NotFound, ValidationFailed
from lighthouse.events import EventStore
from lighthouse.events.command import execute
from lighthouse.events.inline import InlineState
from lighthouse.fleet import rollouts
from lighthouse.fleet.models import CommandState, SendCommand, StartRollout
from lighthouse.fleet.rollouts import RolloutBatchSent, RolloutStarted, RolloutState, RolloutView, Settle
from lighthouse.fleet.service import FleetService, validate_command
from lighthouse.fleet.store import command_stream
from lighthouse.http import validation_details

MAX_AGENTS = 10_000
EXAMPLE_REQUEST_ID = "cmd-" + "0" * 24


def rollout_stream(rollout_id: str) -> str:
    return f"rollout#{rollout_id}"


class RolloutService:
    def __init__(
        self,
        *,
        events: EventStore,
        rollouts_state: InlineState[RolloutState],
        commands: InlineState[CommandState],
        fleet: FleetService,
        clock: Clock,
        start_execution: Callable[[str], None],
    ) -> None:
        self._events = events
        self._rollouts = rollouts_state
        self._commands = commands
        self._fleet = fleet
        self._clock = clock
        self._start_execution = start_execution

    def start(self, principal: Principal, request: StartRollout) -> RolloutView:
        try:
            command = SendCommand.model_validate(request.command)
        except ValidationError as error:
            raise ValidationFailed(f"command: {error.errors()[0]['msg']}", validation_details(error)) from error
        # Checked now, against the schema each agent's copy will be sent with; the real request ids
        # are made per agent when its batch is sent, so a well-formed stand-in takes their place.
        validate_command(command.type, {**(command.model_extra or {}), "request_id": EXAMPLE_REQUEST_ID})
        agents = self._fleet.selected(request.selector.agent_ids, request.selector.tags)
        if not agents:
            raise ValidationFailed("the selector names no agent the fleet knows")
        if len(agents) > MAX_AGENTS:
            raise ValidationFailed(f"a rollout reaches at most {MAX_AGENTS} agents; this selector names {len(agents)}")
        rollout_id = f"ro-{secrets.token_hex(12)}"
        started = RolloutStarted(
            rollout_id=rollout_id, command=request.command, agents=agents, batch_size=request.batch_size,
            max_failure_percent=request.max_failure_percent, batch_timeout_seconds=request.batch_timeout_seconds,
            by=principal.agent_id, at=self._clock.now(),
        )  # fmt: skip
        stream = rollout_stream(rollout_id)
        outcome = execute(
            self._events, stream, rollouts.ROLLOUT_FOLD, rollouts.start, started,
            loaded=(RolloutState(), 0), inline=self._rollouts,
        )  # fmt: skip
        self._start_execution(rollout_id)
        return rollouts.view(outcome.state)

    def get(self, rollout_id: str) -> RolloutView:
        state, _ = self._rollouts.load(rollout_stream(rollout_id))
        if not state.exists:
            raise NotFound(f"no rollout {rollout_id!r}")
        return rollouts.view(state)

    # ---- the state machine's steps ------------------------------------------------------------

    def send_batch(self, rollout_id: str) -> dict[str, Any]:
        """Send the next batch's commands: {"done": true} when nothing is left or it has ended."""
        stream = rollout_stream(rollout_id)
        state, version = self._rollouts.load(stream)
        agents = rollouts.next_agents(state)
        if state.status != "running" or not agents:
            return {"done": True, "batch": -1, "status": state.status}
        batch = len(state.batches)
        by = Principal(agent_id=state.by, role="admin", issued_at=0, expires_at=0, token_id="rollout")  # noqa: S106 - an id, not a secret
        command = SendCommand.model_validate(state.command)
        sent: dict[str, str] = {}
        refused: dict[str, str] = {}
        for agent_id in agents:
            try:
                sent[agent_id] = self._fleet.send(by, agent_id, command, rollout_id=rollout_id).request_id
            except LighthouseError as error:
                refused[agent_id] = f"{error.code}: {error.message}"
        now = self._clock.now()
        record = RolloutBatchSent(
            batch=batch, commands=sent, refused=refused, at=now, deadline=now + state.batch_timeout_seconds
        )
        execute(
            self._events, stream, rollouts.ROLLOUT_FOLD, rollouts.send_batch, record,
            loaded=(state, version), inline=self._rollouts,
        )  # fmt: skip
        return {"done": False, "batch": batch, "sent": len(sent), "refused": len(refused)}

    def check(self, rollout_id: str, batch: int) -> dict[str, Any]:
        """Settle the batch if it can be: {"settled", "finished", "status"}."""
        stream = rollout_stream(rollout_id)
        state, version = self._rollouts.load(stream)
        current = next((b for b in state.batches if b.batch == batch), None)
        if current is None:
            raise NotFound(f"rollout {rollout_id!r} has no batch {batch}")
        statuses: dict[str, str] = {
            agent: self._commands.load(command_stream(request_id))[0].status
            for agent, request_id in current.commands.items()
        }
        settle = Settle(batch=batch, statuses=statuses, at=self._clock.now())
        outcome = execute(
            self._events, stream, rollouts.ROLLOUT_FOLD, rollouts.settle, settle,
            loaded=(state, version), inline=self._rollouts,
        )  # fmt: skip
        after = outcome.state
        settled = next(b for b in after.batches if b.batch == batch).settled_at is not None
        return {"settled": settled, "finished": after.status != "running", "status": after.status}
