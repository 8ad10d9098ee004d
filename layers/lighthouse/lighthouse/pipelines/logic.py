"""Pipeline and task decisions, the folds of their streams, and the views: pure functions."""

from __future__ import annotations

import json
from typing import Any

from lighthouse.errors import Conflict, NotFound
from lighthouse.events.model import StoredEvent
from lighthouse.events.types import Event
from lighthouse.pipelines.models import (
    FINAL,
    LlmCalled,
    PipelineRegistered,
    PipelineState,
    RegisteredPipeline,
    StageFailed,
    StageFinished,
    StageRecord,
    StageStarted,
    StageView,
    TaskCancelled,
    TaskCommand,
    TaskCompleted,
    TaskCreated,
    TaskFailed,
    TaskResumed,
    TaskRunning,
    TaskStarted,
    TaskState,
    TaskView,
    WorkspaceChanged,
)

SUMMARY_CHARS = 4000


class PipelineFold:
    name = "pipeline-v2"
    snapshots = False  # one event per registration; loaded at a version, not folded whole

    def initial(self) -> PipelineState:
        return PipelineState()

    def evolve(self, state: PipelineState, stored: StoredEvent) -> PipelineState:
        if isinstance(stored.event, PipelineRegistered):
            return PipelineState(version=stored.version, registration=stored.event)
        return state

    def to_snapshot(self, state: PipelineState) -> dict[str, Any]:
        return state.model_dump(mode="json")

    def from_snapshot(self, data: dict[str, Any]) -> PipelineState:
        return PipelineState.model_validate(data)


PIPELINE_FOLD = PipelineFold()


def _stage(state: TaskState, stage_id: str, **changes: Any) -> TaskState:
    record = state.stage(stage_id).model_copy(update=changes)
    return state.model_copy(update={"stages": {**state.stages, stage_id: record}})


class TaskFold:
    name = "task-v2"
    snapshots = True  # telemetry makes long streams

    def initial(self) -> TaskState:
        return TaskState()

    def evolve(self, state: TaskState, stored: StoredEvent) -> TaskState:
        event = stored.event
        if isinstance(event, TaskCreated):
            return TaskState(
                task_id=event.task_id,
                owner=event.owner,
                pipeline=event.pipeline,
                version=event.version,
                project=event.project,
                input=event.input,
                overrides=dict(event.overrides),
                routing=dict(event.routing),
                created_at=event.at,
            )
        if isinstance(event, TaskStarted):
            return state.model_copy(update={"executions": [*state.executions, event.execution]})
        if isinstance(event, TaskRunning | TaskResumed):
            return state.model_copy(update={"status": "RUNNING", "failure": None})
        if isinstance(event, StageStarted | StageFinished | StageFailed | LlmCalled):
            return _evolve_stage(state, event)
        if isinstance(event, WorkspaceChanged):
            changes = [dict(change, stage=event.stage, dry_run=event.dry_run) for change in event.changes]
            return state.model_copy(update={"mutations": [*state.mutations, *changes]})
        return _evolve_ending(state, event)

    def to_snapshot(self, state: TaskState) -> dict[str, Any]:
        return state.model_dump(mode="json")

    def from_snapshot(self, data: dict[str, Any]) -> TaskState:
        return TaskState.model_validate(data)


def _evolve_stage(state: TaskState, event: Event) -> TaskState:
    if isinstance(event, StageStarted):
        attempts = state.stage(event.stage).attempts + 1
        return _stage(state, event.stage, status="running", node_type=event.node_type, attempts=attempts)
    if isinstance(event, LlmCalled):
        state = _stage(state, event.stage, llm_calls=state.stage(event.stage).llm_calls + 1)
        return state.model_copy(
            update={
                "prompt_tokens": state.prompt_tokens + event.prompt_tokens,
                "completion_tokens": state.completion_tokens + event.completion_tokens,
                "cost": round(state.cost + event.cost, 8),
            }
        )
    if isinstance(event, StageFinished):
        return _stage(
            state,
            event.stage,
            status="finished",
            output=event.output,
            route=event.route,
            tokens=event.tokens,
            cost=event.cost,
            repairs=list(event.repairs),
            failure=None,
        )
    assert isinstance(event, StageFailed)
    return _stage(state, event.stage, status="failed", failure=dict(event.signature))


def _evolve_ending(state: TaskState, event: Event) -> TaskState:
    if isinstance(event, TaskCompleted):
        return state.model_copy(update={"status": "COMPLETED", "output": event.output, "finished_at": event.at})
    if isinstance(event, TaskFailed):
        return state.model_copy(update={"status": "FAILED", "failure": dict(event.failure), "finished_at": event.at})
    if isinstance(event, TaskCancelled):
        return state.model_copy(update={"status": "CANCELLED", "finished_at": event.at})
    return state


TASK_FOLD = TaskFold()


def decide_task(state: TaskState, command: TaskCommand) -> list[Event]:
    """Cancel, resume, complete or fail a task. Cancel refuses an ended task; complete and fail
    quietly do nothing then (a retried Step Functions step)."""
    if not state.exists:
        raise NotFound("no such task")
    if command.kind == "cancel":
        if state.status in FINAL:
            raise Conflict(f"the task is already {state.status}", {"status": state.status})
        return [TaskCancelled(by=command.by, at=command.at)]
    if command.kind == "resume":
        if state.status != "FAILED":
            raise Conflict(f"only a FAILED task can be resumed; this one is {state.status}", {"status": state.status})
        return [TaskResumed(by=command.by, at=command.at)]
    if state.status in FINAL:
        return []
    if command.kind == "complete":
        output = state.stages[command.last_stage].output if command.last_stage in state.stages else None
        return [TaskCompleted(output=output, last_stage=command.last_stage, at=command.at)]
    return [TaskFailed(failure=failure_of(state, command.failure or {}), at=command.at)]


def failure_of(state: TaskState, failure: dict[str, Any]) -> dict[str, Any]:
    """The signature of the stage that failed, or what Step Functions said (Error and Cause)."""
    failed = [r.failure for r in state.stages.values() if r.status == "failed" and r.failure]
    cause = failure.get("Cause", "")
    try:
        detail = json.loads(cause) if isinstance(cause, str) and cause.startswith("{") else {"message": cause}
    except ValueError:
        detail = {"message": cause}
    if not isinstance(detail, dict):
        detail = {"message": str(detail)}
    signature = failed[-1] if failed else {"category": "config", "message": str(detail.get("errorMessage") or cause)}
    return {**signature, "error": failure.get("Error")}


def stage_input(state: TaskState, previous: dict[str, Any]) -> Any:
    """What a stage receives: the previous stage's output, or the task's input."""
    node = previous.get("node") if isinstance(previous, dict) else None
    if node and node in state.stages:
        return state.stages[node].output
    return state.input


def summary(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:SUMMARY_CHARS]


def registered_view(version: int, event: PipelineRegistered) -> RegisteredPipeline:
    return RegisteredPipeline(
        name=event.name,
        version=version,
        workflow=event.workflow,
        state_machine_arn=event.state_machine_arn,
        registered_at=event.at,
        registered_by=event.by,
    )


def task_view(state: TaskState) -> TaskView:
    return TaskView(
        task_id=state.task_id,
        pipeline=state.pipeline,
        version=state.version,
        status=state.status,
        input=state.input,
        overrides=state.overrides,
        routing=state.routing,
        stages={k: StageView(**_stage_fields(v)) for k, v in state.stages.items()},
        prompt_tokens=state.prompt_tokens,
        completion_tokens=state.completion_tokens,
        total_tokens=state.prompt_tokens + state.completion_tokens,
        cost=state.cost,
        mutations=state.mutations,
        output=state.output,
        failure=state.failure,
        executions=state.executions,
        created_at=state.created_at,
        finished_at=state.finished_at,
    )


def _stage_fields(record: StageRecord) -> dict[str, Any]:
    return record.model_dump()
