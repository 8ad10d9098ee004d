"""Rollouts: one command to many agents in batches (a canary of one agent first), stopping when the
failure rate passes a threshold. Each rollout is a stream `rollout#<id>` whose state document
(`fleet-rollouts/<id>`) the state machine's steps and GET /fleet/rollouts/{id} read.

A batch settles when every command in it has ended, or at its deadline (commands still open then
count as failed: an agent that never answered is not a success)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from lighthouse.errors import Conflict
from lighthouse.events.model import StoredEvent
from lighthouse.events.types import Event

RolloutStatus = Literal["running", "completed", "halted"]
CANARY_SIZE = 1


class RolloutStarted(Event):
    TYPE: ClassVar[str] = "FLEET_ROLLOUT_STARTED"

    rollout_id: str
    command: dict[str, Any]
    agents: list[str]
    batch_size: int
    max_failure_percent: float
    batch_timeout_seconds: int
    by: str
    at: float


class RolloutBatchSent(Event):
    TYPE: ClassVar[str] = "FLEET_ROLLOUT_BATCH_SENT"

    batch: int
    commands: dict[str, str]  # agent id -> request id
    refused: dict[str, str] = Field(default_factory=dict)  # agent id -> why its command was not sent
    at: float
    deadline: float


class RolloutBatchSettled(Event):
    TYPE: ClassVar[str] = "FLEET_ROLLOUT_BATCH_SETTLED"

    batch: int
    outcomes: dict[str, str]  # agent id -> succeeded | failed | expired | timed_out | refused
    at: float


class RolloutFinished(Event):
    TYPE: ClassVar[str] = "FLEET_ROLLOUT_FINISHED"

    status: Literal["completed", "halted"]
    reason: str
    at: float


class BatchView(BaseModel):
    batch: int
    agents: list[str]
    commands: dict[str, str]
    outcomes: dict[str, str] = Field(default_factory=dict)
    sent_at: float
    deadline: float
    settled_at: float | None = None


class RolloutState(BaseModel):
    rollout_id: str = ""
    command: dict[str, Any] = Field(default_factory=dict)
    agents: list[str] = Field(default_factory=list)
    batch_size: int = 1
    max_failure_percent: float = 0.0
    batch_timeout_seconds: int = 300
    by: str = ""
    started_at: float = 0.0
    status: RolloutStatus = "running"
    reason: str = ""
    finished_at: float | None = None
    batches: list[BatchView] = Field(default_factory=list)

    @property
    def exists(self) -> bool:
        return bool(self.rollout_id)

    @property
    def settled_outcomes(self) -> dict[str, str]:
        return {agent: outcome for batch in self.batches for agent, outcome in batch.outcomes.items()}

    @property
    def failure_percent(self) -> float:
        settled = self.settled_outcomes
        failed = sum(1 for outcome in settled.values() if outcome != "succeeded")
        return 100.0 * failed / len(settled) if settled else 0.0


class RolloutView(RolloutState):
    outcomes: dict[str, str] = Field(default_factory=dict, description="each agent's outcome, once its batch settled")
    counts: dict[str, int] = Field(default_factory=dict)
    pending: int = 0
    failure_percent_so_far: float = 0.0


class RolloutFold:
    name = "fleet-rollout-v1"
    snapshots = False

    def initial(self) -> RolloutState:
        return RolloutState()

    def evolve(self, state: RolloutState, stored: StoredEvent) -> RolloutState:
        event = stored.event
        if isinstance(event, RolloutStarted):
            return RolloutState(
                rollout_id=event.rollout_id, command=event.command, agents=event.agents, batch_size=event.batch_size,
                max_failure_percent=event.max_failure_percent, batch_timeout_seconds=event.batch_timeout_seconds,
                by=event.by, started_at=event.at,
            )  # fmt: skip
        if isinstance(event, RolloutBatchSent):
            agents = [*event.commands, *event.refused]
            batch = BatchView(
                batch=event.batch, agents=agents, commands=event.commands, sent_at=event.at, deadline=event.deadline,
                outcomes={agent: "refused" for agent in event.refused},
            )  # fmt: skip
            return state.model_copy(update={"batches": [*state.batches, batch]})
        if isinstance(event, RolloutBatchSettled):
            batches = [
                b.model_copy(update={"outcomes": {**b.outcomes, **event.outcomes}, "settled_at": event.at})
                if b.batch == event.batch
                else b
                for b in state.batches
            ]
            return state.model_copy(update={"batches": batches})
        if isinstance(event, RolloutFinished):
            return state.model_copy(update={"status": event.status, "reason": event.reason, "finished_at": event.at})
        return state

    def to_snapshot(self, state: RolloutState) -> dict[str, Any]:
        return state.model_dump(mode="json")

    def from_snapshot(self, data: dict[str, Any]) -> RolloutState:
        return RolloutState.model_validate(data)


ROLLOUT_FOLD = RolloutFold()


# ---- decisions --------------------------------------------------------------------------------


def next_agents(state: RolloutState) -> list[str]:
    """The agents of the next batch: a canary of one first, then batch_size at a time."""
    done = sum(len(b.agents) for b in state.batches)
    size = CANARY_SIZE if not state.batches else state.batch_size
    return state.agents[done : done + size]


def start(state: RolloutState, command: RolloutStarted) -> list[Event]:
    if state.exists:
        raise Conflict(f"rollout {command.rollout_id!r} exists")
    return [command]


def send_batch(state: RolloutState, command: RolloutBatchSent) -> list[Event]:
    if state.status != "running" or any(b.batch == command.batch for b in state.batches):
        return []
    return [command]


@dataclass(frozen=True)
class Settle:
    batch: int
    statuses: dict[str, str]  # agent id -> its command's status now
    at: float


def settle(state: RolloutState, command: Settle) -> list[Event]:
    """The batch's outcomes once every command ended, or at its deadline; then maybe the end."""
    batch = next((b for b in state.batches if b.batch == command.batch), None)
    if batch is None or batch.settled_at is not None:
        return []
    ended = ("succeeded", "failed", "expired")
    if command.at < batch.deadline and any(s not in ended for s in command.statuses.values()):
        return []
    outcomes = {a: (s if s in ended else "timed_out") for a, s in command.statuses.items()}
    settled = RolloutBatchSettled(batch=command.batch, outcomes=outcomes, at=command.at)
    return [settled, *_ending(ROLLOUT_FOLD.evolve(state, _stored(state, settled)), command)]


def _stored(state: RolloutState, event: Event) -> StoredEvent:
    """`event` as the fold reads it, to decide on the state it leads to (nothing is stored here)."""
    return StoredEvent(f"rollout#{state.rollout_id}", 0, event, "", 0.0)


def _ending(after: RolloutState, command: Settle) -> list[Event]:
    """The end of the rollout, if this settled batch brings it: too many failures, or nobody left."""
    if after.failure_percent > after.max_failure_percent:
        allowed = after.max_failure_percent
        reason = f"{after.failure_percent:.1f}% failed after batch {command.batch}, over the {allowed}% allowed"
        return [RolloutFinished(status="halted", reason=reason, at=command.at)]
    if not next_agents(after):
        return [RolloutFinished(status="completed", reason="every batch settled", at=command.at)]
    return []


def view(state: RolloutState) -> RolloutView:
    counts: dict[str, int] = {}
    outcomes = state.settled_outcomes
    for outcome in outcomes.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    return RolloutView(
        **state.model_dump(),
        outcomes=outcomes,
        counts=counts,
        pending=len(state.agents) - len(outcomes),
        failure_percent_so_far=round(state.failure_percent, 2),
    )
