"""The console's application service: browser sign-in, executions with their meaning, the overview."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lighthouse.agents.models import SessionRequest, SessionResponse
from lighthouse.clock import Clock
from lighthouse.console import logic
from lighthouse.console.models import (
    BrowserSession,
    ExecutionDetail,
    ExecutionKind,
    ExecutionPage,
    ExecutionSummary,
    Figure,
    Overview,
)
from lighthouse.console.stats import RecentRequests
from lighthouse.console.store import Executions, seconds
from lighthouse.errors import Forbidden
from lighthouse.validation.models import AuditEntry

CONSOLE_ROLES = ("human", "admin")
MAX_EXECUTIONS = 200
HOUR = 3600.0
# The template's alarm on each dead-letter queue the overview reads (lighthouse.console.parts names them).
DEAD_LETTER_ALARMS = {
    "projector failures": "ProjectorFailureAlarm",
    "dispatch failures": "DispatchFailureAlarm",
    "presence": "PresenceDeadLetterAlarm",
    "fleet ingest": "FleetIngestDeadLetterAlarm",
    "run notifications": "RunNotifyDeadLetterAlarm",
}


@dataclass(frozen=True)
class Machines:
    """Which state machine runs what: the configured ARNs, and pipelines by their name prefix."""

    by_arn: Mapping[str, ExecutionKind]
    pipeline_prefix: str

    def kind(self, machine_arn: str, name: str) -> ExecutionKind:
        if machine_arn in self.by_arn:
            return self.by_arn[machine_arn]
        if name.startswith(self.pipeline_prefix):
            return "pipeline_task"
        return "presence" if "presence" in name.lower() else "other"


@dataclass(frozen=True)
class OverviewSources:
    """Where each overview figure comes from (the platform's own read models and queues)."""

    expiry_counts: Callable[[], tuple[int, int]]  # (requested, expired) elicitations
    fleet_presence: Callable[[], list[str]]  # each fleet agent's presence
    recent_decisions: Callable[[int], list[AuditEntry]]  # every agent's, newest first
    dead_letter_depths: Callable[[], dict[str, int]]  # queue name -> messages waiting
    stream_lag_seconds: Callable[[], float | None]  # newest event appended -> projected
    requests: RecentRequests


class ConsoleService:
    def __init__(
        self,
        sign_in: Callable[[SessionRequest, str], SessionResponse],
        executions: Executions,
        machines: Machines,
        sources: OverviewSources,
        clock: Clock,
    ) -> None:
        self._sign_in = sign_in
        self._executions = executions
        self._machines = machines
        self._sources = sources
        self._clock = clock

    # ---- sessions

    def sign_in(self, request: SessionRequest, source: str) -> tuple[str, int, BrowserSession]:
        """A session for a human or an admin: the token and its lifetime for the cookie, and what the page gets."""
        session = self._sign_in(request, source)
        if session.role not in CONSOLE_ROLES:
            raise Forbidden(f"the console is for human and admin agents; {session.agent_id} is {session.role}")
        browser = self.browser_session(session.token, session.agent_id, session.role, session.expires_at)
        return session.token, session.expires_at - int(self._clock.now()), browser

    def browser_session(self, token: str, agent_id: str, role: str, expires_at: int) -> BrowserSession:
        return BrowserSession(agent_id=agent_id, role=role, expires_at=expires_at, csrf=logic.csrf_for(token))  # type: ignore[arg-type]

    # ---- executions

    def executions(self, kind: str | None, status: str | None, limit: int) -> ExecutionPage:
        summaries: list[ExecutionSummary] = []
        truncated = False
        for machine in self._executions.state_machines():
            arn, name = machine["stateMachineArn"], machine["name"]
            machine_kind = self._machines.kind(arn, name)
            if kind and machine_kind != kind:
                continue
            listed, more = self._executions.executions(arn, min(limit, MAX_EXECUTIONS), status)
            truncated = truncated or more
            summaries += [self._summary(e, name, machine_kind) for e in listed]
        summaries.sort(key=lambda s: s.started_at, reverse=True)
        return ExecutionPage(executions=summaries[:limit], truncated=truncated or len(summaries) > limit)

    def execution(self, execution_arn: str) -> ExecutionDetail:
        described = self._executions.execution(execution_arn)
        machine_arn = described["stateMachineArn"]
        machine_name = machine_arn.rsplit(":", 1)[-1]
        definition = self._executions.definition(machine_arn)
        events, _ = self._executions.history(execution_arn)
        nodes, edges = logic.graph(definition)
        error = described.get("error")
        return ExecutionDetail(
            execution=self._summary(described, machine_name, self._machines.kind(machine_arn, machine_name)),
            start_at=str(definition.get("StartAt", "")),
            nodes=logic.state_statuses(nodes, events),
            edges=edges,
            history=[logic.history_entry(event) for event in events],
            input=logic.redact(described.get("input")),
            output=logic.redact(described.get("output")),
            error=f"{error}: {described.get('cause') or ''}".strip(": ") if error else None,
        )

    def _summary(self, execution: Mapping[str, Any], machine_name: str, kind: ExecutionKind) -> ExecutionSummary:
        stopped = execution.get("stopDate")
        return ExecutionSummary(
            execution_arn=execution["executionArn"],
            name=execution["name"],
            state_machine=machine_name,
            status=execution["status"],
            started_at=seconds(execution.get("startDate")),
            stopped_at=seconds(stopped) if stopped else None,
            link=logic.domain_link(kind, execution["name"]),
        )

    # ---- overview

    def overview(self) -> Overview:
        """Each figure beside the alarm that watches it on AWS, and whether that alarm would fire."""
        now = self._clock.now()
        figures = [
            *self._api_figures(),
            *self._dead_letter_figures(),
            self._failed_executions_figure(now),
            self._expiry_figure(),
            self._gate_figure(),
            self._stream_figure(),
            self._fleet_figure(),
        ]
        return Overview(figures=figures, at=now)

    def _api_figures(self) -> list[Figure]:
        served, errors, p99 = self._sources.requests.figures()
        return [
            Figure(name="API 5xx answers", value=errors, unit=f"of the last {served} requests",
                   alarm="ApiServerErrorsAlarm", breaching=errors > 5, source="this API container"),
            Figure(name="API p99 latency", value=_round(p99), unit="ms", alarm="ApiLatencyAlarm",
                   breaching=(p99 or 0) > 25_000, source="this API container (long-polls included)"),
        ]  # fmt: skip

    def _dead_letter_figures(self) -> list[Figure]:
        return [
            Figure(name=f"dead letters: {queue}", value=depth, unit="messages", alarm=DEAD_LETTER_ALARMS.get(queue),
                   breaching=depth > 0, source="SQS ApproximateNumberOfMessages")
            for queue, depth in sorted(self._sources.dead_letter_depths().items())
        ]  # fmt: skip

    def _failed_executions_figure(self, now: float) -> Figure:
        failed = sum(
            self._executions.count_failed_since(machine["stateMachineArn"], now - HOUR)
            for machine in self._executions.state_machines()
        )
        return Figure(
            name="Step Functions failed executions", value=failed, unit="in the last hour",
            alarm="StateMachineFailuresAlarm", breaching=failed > 0, source="ListExecutions(FAILED)",
        )  # fmt: skip

    def _expiry_figure(self) -> Figure:
        requested, expired = self._sources.expiry_counts()
        rate = expired / requested if requested else 0.0
        return Figure(name="elicitation expiry rate", value=_round(rate, 3), unit=f"{expired} of {requested} expired",
                      alarm="ElicitationExpiryRateAlarm", breaching=requested >= 20 and rate > 0.25,
                      source="elicitation metrics read model")  # fmt: skip

    def _gate_figure(self) -> Figure:
        decided = [e for e in self._sources.recent_decisions(200) if e.decided_at is not None]
        p99 = _percentile(sorted(((e.decided_at or 0.0) - e.requested_at) * 1000 for e in decided), 0.99)
        return Figure(name="gate decision latency p99", value=_round(p99), unit="ms",
                      alarm="GateDecisionLatencyAlarm", breaching=(p99 or 0) > 60_000,
                      source=f"the last {len(decided)} decisions (audit read model)")  # fmt: skip

    def _stream_figure(self) -> Figure:
        lag = self._sources.stream_lag_seconds()
        return Figure(
            name="stream iterator age", value=_round(lag), unit="s", alarm="StreamIteratorAgeAlarm",
            breaching=(lag or 0) > 60,
            source="DynamoDB Streams IteratorAge: AWS only (the embedded cloud hands records over at once)",
        )  # fmt: skip

    def _fleet_figure(self) -> Figure:
        presence = self._sources.fleet_presence()
        offline = sum(1 for p in presence if p == "offline")
        return Figure(name="fleet agents offline", value=offline, unit=f"of {len(presence)}",
                      alarm="FleetOfflineAlarm", breaching=offline > 0, source="fleet read model")  # fmt: skip


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[min(98, int(share * 100) - 1)]


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)
