"""Runs' decisions: the run fold, what each step may record, directives' versions, and which runs
came after a job's last success. Pure: no storage, no clock."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import jsonschema

from lighthouse.errors import Conflict, ValidationFailed
from lighthouse.events.model import StoredEvent
from lighthouse.events.types import Event
from lighthouse.runs.models import (
    FINAL_RUN_STATUSES,
    ArtifactView,
    Directive,
    DirectiveSaved,
    DirectiveState,
    JobTemplate,
    JobView,
    LlmChoice,
    RunArtifactStored,
    RunCollectionRefused,
    RunFinished,
    RunJobAnalysing,
    RunJobCollecting,
    RunJobFailed,
    RunJobSucceeded,
    RunLaunched,
    RunStarted,
    RunState,
    RunSummary,
    RunView,
)

# ---- the run fold ----------------------------------------------------------------------------


def _job(state: RunState, index: int, **changes: Any) -> RunState:
    jobs = [job.model_copy(update=changes) if job.index == index else job for job in state.jobs]
    return state.model_copy(update={"jobs": jobs})


def _launched(state: RunState, event: RunLaunched) -> RunState:
    jobs = [
        JobView(index=i, job=j["job"], version=j["version"], parameters=j["parameters"], targets=j["targets"],
                status="pending")
        for i, j in enumerate(event.jobs)
    ]  # fmt: skip
    return RunState(
        run_id=event.run_id, jobs=jobs, directive=event.directive, llm=event.llm, notify_url=event.notify_url,
        schedule=event.schedule, launched_by=event.by, launched_at=event.at,
    )  # fmt: skip


def _collecting(state: RunState, event: RunJobCollecting) -> RunState:
    job = state.jobs[event.index]
    return _job(
        state, event.index, status="collecting", started_at=event.at,
        collections={**job.collections, **event.collections}, refused={**job.refused, **event.refused},
    )  # fmt: skip


def _artifact(state: RunState, event: RunArtifactStored) -> RunState:
    artifact = ArtifactView(
        key=event.key, job=state.jobs[event.index].job, name=event.name, size=event.size,
        content_type=event.content_type, sha256=event.sha256,
    )  # fmt: skip
    return state.model_copy(update={"artifacts": [*state.artifacts, artifact]})


def _finished(state: RunState, event: RunFinished) -> RunState:
    jobs = [
        j.model_copy(update={"status": "cancelled", "ended_at": event.at})
        if event.status == "cancelled" and j.status not in ("success", "failed")
        else j
        for j in state.jobs
    ]
    return state.model_copy(update={"status": event.status, "error": event.error, "ended_at": event.at, "jobs": jobs})


_EVOLVE: dict[type[Event], Callable[[RunState, Any], RunState]] = {
    RunLaunched: _launched,
    RunStarted: lambda state, e: state.model_copy(
        update={"status": "running", "started_at": e.at, "execution": e.execution}
    ),
    RunJobCollecting: _collecting,
    RunCollectionRefused: lambda state, e: _job(
        state,
        e.index,
        refused={**state.jobs[e.index].refused, e.target: e.reason},
        collections={t: r for t, r in state.jobs[e.index].collections.items() if t != e.target},
    ),
    RunJobAnalysing: lambda state, e: _job(state, e.index, status="analysing"),
    RunArtifactStored: _artifact,
    RunJobSucceeded: lambda state, e: _job(
        state, e.index, status="success", tokens=e.tokens, cost_usd=e.cost_usd, llm_calls=e.llm_calls, ended_at=e.at
    ),
    RunJobFailed: lambda state, e: _job(state, e.index, status="failed", error=e.error, ended_at=e.at),
    RunFinished: _finished,
}


class RunFold:
    name = "run-v1"
    snapshots = False

    def initial(self) -> RunState:
        return RunState()

    def evolve(self, state: RunState, stored: StoredEvent) -> RunState:
        step = _EVOLVE.get(type(stored.event))
        return step(state, stored.event) if step is not None else state

    def to_snapshot(self, state: RunState) -> dict[str, Any]:
        return state.model_dump(mode="json")

    def from_snapshot(self, data: dict[str, Any]) -> RunState:
        return RunState.model_validate(data)


RUN_FOLD = RunFold()


# ---- decisions on a run ----------------------------------------------------------------------


def launch(state: RunState, launched: RunLaunched) -> list[Event]:
    if state.exists:
        raise Conflict(f"run {launched.run_id!r} exists")
    return [launched]


def start(state: RunState, started: RunStarted) -> list[Event]:
    return [started] if state.status == "pending" else []


def job_step(state: RunState, event: Event) -> list[Event]:
    """A job's progress is recorded while the run is open, and once (a retried step records nothing)."""
    if state.status in FINAL_RUN_STATUSES:
        return []
    index = getattr(event, "index", -1)
    if not 0 <= index < len(state.jobs):
        raise ValidationFailed(f"run {state.run_id} has no job {index}")
    job = state.jobs[index]
    if job.status in ("success", "failed"):
        return []
    if isinstance(event, RunJobCollecting) and job.status != "pending":
        return []
    return [event]


def artifacts(state: RunState, stored: list[RunArtifactStored]) -> list[Event]:
    known = {a.key for a in state.artifacts}
    return [a for a in stored if a.key not in known] if state.status not in FINAL_RUN_STATUSES else []


def finish(state: RunState, finished: RunFinished) -> list[Event]:
    """The run's end: once. A cancel after the end changes nothing (and says so to the caller)."""
    if state.status in FINAL_RUN_STATUSES:
        if finished.status == "cancelled" and finished.by != "state-machine":
            raise Conflict(f"run {state.run_id} already ended: {state.status}")
        return []
    return [finished]


def outcome(state: RunState) -> tuple[str, str | None]:
    """What the run's jobs add up to: success only if every job succeeded."""
    failed = [job for job in state.jobs if job.status == "failed"]
    if failed:
        return "failed", "; ".join(f"{job.job}[{job.index}]: {job.error}" for job in failed)
    if any(job.status != "success" for job in state.jobs):
        return "failed", "a job did not finish"
    return "success", None


def run_view(state: RunState) -> RunView:
    return RunView(
        run_id=state.run_id, status=state.status, jobs=state.jobs, directive=Directive.model_validate(state.directive),
        llm=LlmChoice.model_validate(state.llm), launched_by=state.launched_by, launched_at=state.launched_at,
        started_at=state.started_at, ended_at=state.ended_at, execution=state.execution, error=state.error,
        schedule=state.schedule,
    )  # fmt: skip


def summary(state: RunState) -> RunSummary:
    return RunSummary(
        run_id=state.run_id,
        status=state.status,
        jobs=[job.job for job in state.jobs],
        directive=str(state.directive.get("directive_id", "")),
        launched_at=state.launched_at,
        ended_at=state.ended_at,
        launched_by=state.launched_by,
    )


def since_last_success(newest_first: Iterable[RunSummary]) -> tuple[RunSummary | None, list[RunSummary]]:
    """Walk a job's runs from the newest: every run until the first success (which is returned apart).

    With no success at all, every run is "since"; pending and running runs count like any other."""
    after: list[RunSummary] = []
    for run in newest_first:
        if run.status == "success":
            return run, after
        after.append(run)
    return None, after


# ---- schedules ------------------------------------------------------------------------------------


def due(schedules: dict[str, str], now: float, look_back_seconds: int) -> list[tuple[str, float]]:
    """(job, occurrence) of every cron schedule that fired in (now - look_back, now]."""
    from cronsim import CronSim

    fired: list[tuple[str, float]] = []
    start = datetime.datetime.fromtimestamp(now - look_back_seconds, datetime.UTC)
    for job, expression in sorted(schedules.items()):
        for occurrence in CronSim(expression, start):
            if occurrence.timestamp() > now:
                break
            fired.append((job, occurrence.timestamp()))
    return fired


# ---- parameters ------------------------------------------------------------------------------


def job_parameters(template: JobTemplate, given: dict[str, Any]) -> dict[str, Any]:
    merged = {**template.parameters, **given}
    validator = jsonschema.Draft202012Validator(template.parameters_schema)
    errors = sorted(validator.iter_errors(merged), key=lambda e: list(e.absolute_path))
    if errors:
        reasons = [f"{'/'.join(str(p) for p in e.absolute_path) or '(parameters)'}: {e.message}" for e in errors]
        raise ValidationFailed(
            f"invalid parameters for {template.task_key}: " + "; ".join(reasons),
            {"reasons": reasons, "schema": template.parameters_schema},
        )
    return merged


# ---- directives ------------------------------------------------------------------------------


class DirectiveFold:
    name = "run-directive-v1"
    snapshots = False

    def initial(self) -> DirectiveState:
        return DirectiveState()

    def evolve(self, state: DirectiveState, stored: StoredEvent) -> DirectiveState:
        event = stored.event
        if isinstance(event, DirectiveSaved):
            version = Directive(
                directive_id=event.directive_id, type="D4", version=event.version, updated_at=event.at,
                updated_by=event.by, **event.body,
            )  # fmt: skip
            return DirectiveState(directive_id=event.directive_id, versions=[*state.versions, version])
        return state

    def to_snapshot(self, state: DirectiveState) -> dict[str, Any]:
        return state.model_dump(mode="json")

    def from_snapshot(self, data: dict[str, Any]) -> DirectiveState:
        return DirectiveState.model_validate(data)


DIRECTIVE_FOLD = DirectiveFold()


@dataclass(frozen=True)
class Save:
    directive_id: str
    body: dict[str, Any]
    by: str
    at: float
    reserved: frozenset[str]  # ids of D1-D3 directives: a D4 may not shadow them


def save_directive(state: DirectiveState, command: Save) -> list[Event]:
    if command.directive_id in command.reserved:
        raise Conflict(f"directive {command.directive_id!r} is built in or configured; create a D4 under another id")
    if state.versions and state.versions[-1].model_dump(include=set(command.body)) == command.body:
        return []  # the same content again: no new version
    version = len(state.versions) + 1
    return [
        DirectiveSaved(
            directive_id=command.directive_id, version=version, body=command.body, by=command.by, at=command.at
        )
    ]
