"""The pipeline and task streams: events and their folded state."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from lighthouse.events.model import StoredEvent

PIPELINE_REGISTERED = "PIPELINE_REGISTERED"
PIPELINES_DECLARED = "PIPELINES_DECLARED"
PIPELINE_INDEX = "pipeline-index"

TASK_CREATED = "TASK_CREATED"
TASK_STARTED = "TASK_STARTED"
TASK_RUNNING = "TASK_RUNNING"
STAGE_STARTED = "STAGE_STARTED"
STAGE_FINISHED = "STAGE_FINISHED"
STAGE_FAILED = "STAGE_FAILED"
LLM_CALLED = "LLM_CALLED"
TOOL_CALLED = "TOOL_CALLED"
MEMORY_RETRIEVED = "MEMORY_RETRIEVED"
ROUTING_DECIDED = "ROUTING_DECIDED"
WORKSPACE_CHANGED = "WORKSPACE_CHANGED"
TASK_COMPLETED = "TASK_COMPLETED"
TASK_FAILED = "TASK_FAILED"
TASK_CANCELLED = "TASK_CANCELLED"
TASK_RESUMED = "TASK_RESUMED"
FINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


def pipeline_stream(name: str) -> str:
    return f"pipeline#{name}"


def task_stream(task_id: str) -> str:
    return f"task#{task_id}"


@dataclass
class PipelineState:
    name: str = ""
    version: int = 0
    registration: dict[str, Any] = field(default_factory=dict)


class PipelineReducer:
    name = "pipeline-v1"

    def initial(self) -> PipelineState:
        return PipelineState()

    def apply(self, state: PipelineState, event: StoredEvent) -> PipelineState:
        if event.type == PIPELINE_REGISTERED:
            return PipelineState(event.data["name"], event.version, dict(event.data))
        return state

    def to_snapshot(self, state: PipelineState) -> dict[str, Any]:
        return asdict(state)

    def from_snapshot(self, data: dict[str, Any]) -> PipelineState:
        return PipelineState(**data)


@dataclass
class StageRecord:
    status: str = "pending"
    node_type: str = ""
    attempts: int = 0
    output: Any = None
    route: str = ""
    tokens: int = 0
    cost: float = 0.0
    llm_calls: int = 0
    repairs: list[str] = field(default_factory=list)
    failure: dict[str, Any] | None = None


@dataclass
class TaskState:
    task_id: str = ""
    owner: str = ""
    pipeline: str = ""
    version: int = 0
    project: str = "default"
    input: Any = None
    overrides: dict[str, bool] = field(default_factory=dict)
    routing: dict[str, Any] = field(default_factory=dict)
    status: str = "PENDING"
    stages: dict[str, StageRecord] = field(default_factory=dict)
    executions: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    mutations: list[dict[str, Any]] = field(default_factory=list)
    output: Any = None
    failure: dict[str, Any] | None = None
    created_at: float = 0.0
    finished_at: float | None = None

    @property
    def exists(self) -> bool:
        return bool(self.task_id)

    def stage(self, stage_id: str) -> StageRecord:
        return self.stages.setdefault(stage_id, StageRecord())


class TaskReducer:
    name = "task-v1"

    def initial(self) -> TaskState:
        return TaskState()

    def apply(self, state: TaskState, event: StoredEvent) -> TaskState:
        data = event.data
        kind = event.type
        if kind == TASK_CREATED:
            return TaskState(
                task_id=data["task_id"],
                owner=data["owner"],
                pipeline=data["pipeline"],
                version=data["version"],
                project=data["project"],
                input=data["input"],
                overrides=dict(data["overrides"]),
                routing=dict(data["routing"]),
                created_at=data["at"],
            )
        if kind == TASK_STARTED:
            state.executions.append(data["execution"])
        elif kind in (TASK_RUNNING, TASK_RESUMED):
            state.status = "RUNNING"
            state.failure = None
        elif kind == STAGE_STARTED:
            record = state.stage(data["stage"])
            record.status, record.node_type = "running", data["node_type"]
            record.attempts += 1
        elif kind == LLM_CALLED:
            record = state.stage(data["stage"])
            record.llm_calls += 1
            state.prompt_tokens += data["prompt_tokens"]
            state.completion_tokens += data["completion_tokens"]
            state.cost = round(state.cost + data["cost"], 8)
        elif kind == STAGE_FINISHED:
            record = state.stage(data["stage"])
            record.status, record.output, record.route = "finished", data["output"], data.get("route", "")
            record.tokens, record.cost, record.repairs = data["tokens"], data["cost"], list(data.get("repairs", []))
            record.failure = None
        elif kind == STAGE_FAILED:
            record = state.stage(data["stage"])
            record.status, record.failure = "failed", dict(data["signature"])
        elif kind == WORKSPACE_CHANGED:
            state.mutations += [
                dict(change, stage=data["stage"], dry_run=data["dry_run"]) for change in data["changes"]
            ]
        elif kind == TASK_COMPLETED:
            state.status, state.output, state.finished_at = "COMPLETED", data["output"], data["at"]
        elif kind == TASK_FAILED:
            state.status, state.failure, state.finished_at = "FAILED", dict(data["failure"]), data["at"]
        elif kind == TASK_CANCELLED:
            state.status, state.finished_at = "CANCELLED", data["at"]
        return state

    def to_snapshot(self, state: TaskState) -> dict[str, Any]:
        return asdict(state)

    def from_snapshot(self, data: dict[str, Any]) -> TaskState:
        stages = {k: StageRecord(**v) for k, v in data.pop("stages").items()}
        return TaskState(**data, stages=stages)
