"""Pipelines: the API's request and view models, and the events, state and commands of the pipeline
and task streams."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from lighthouse.events.types import Event
from lighthouse.pipelines.manifests import MANIFEST_FILES

MAX_WAIT_SECONDS = 20


class RegisterPipelines(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    files: dict[str, str] = Field(
        description=f"the config directory: file name ({', '.join(MANIFEST_FILES)}) -> YAML text"
    )


class RegisteredPipeline(BaseModel):
    name: str
    version: int
    workflow: str
    state_machine_arn: str
    registered_at: float
    registered_by: str


class Registration(BaseModel):
    pipelines: list[RegisteredPipeline]


class PipelineView(RegisteredPipeline):
    definition: dict[str, Any] = Field(description="the compiled Amazon States Language definition")
    manifests: dict[str, str]


class PipelineList(BaseModel):
    pipelines: list[RegisteredPipeline]


class Overrides(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    analysis_only: bool = False
    dry_run: bool = False
    skip_tools: bool = False


class CreateTask(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    input: Any = Field(description="what the first stage receives")
    pipeline: str | None = None
    mode: str | None = None
    tags: list[str] = Field(default_factory=list, max_length=50)
    overrides: Overrides = Field(default_factory=Overrides)


class StageView(BaseModel):
    status: str
    node_type: str
    attempts: int
    output: Any = None
    route: str = ""
    tokens: int = 0
    cost: float = 0.0
    llm_calls: int = 0
    repairs: list[str] = Field(default_factory=list)
    failure: dict[str, Any] | None = None


class TaskView(BaseModel):
    task_id: str
    pipeline: str
    version: int
    status: Literal["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"]
    input: Any = None
    overrides: dict[str, bool]
    routing: dict[str, Any]
    stages: dict[str, StageView]
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float
    mutations: list[dict[str, Any]]
    output: Any = None
    failure: dict[str, Any] | None = None
    executions: list[str]
    created_at: float
    finished_at: float | None = None


class Remember(BaseModel):
    """An item for a project's or the global memory (task memory is written by the stages)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    store: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$", description="a store name from memory.yaml")
    scope: Literal["project", "global"]
    project: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$")
    text: str = Field(min_length=1, max_length=8000)
    importance: float = Field(default=0.5, ge=0, le=1)


class Remembered(BaseModel):
    item_id: str
    store_key: str


class MemoryItemView(BaseModel):
    item_id: str
    text: str
    importance: float
    at: float


class MemoryPage(BaseModel):
    store_key: str
    items: list[MemoryItemView]


# ---- events: the pipeline streams `pipeline#<name>`, the index, and the task streams --------------
# Telemetry events (LLM_CALLED, TOOL_CALLED, MEMORY_RETRIEVED, STAGE_STARTED, STAGE_FAILED,
# ROUTING_DECIDED) are stored as the telemetry settings prepared them: unless a pipeline turns
# redaction off, prompts, completions and tool arguments are replaced by their length and hash.


class PipelineRegistered(Event):
    TYPE: ClassVar[str] = "PIPELINE_REGISTERED"

    name: str
    workflow: str
    files: dict[str, str]
    definition: dict[str, Any]
    state_machine_arn: str
    at: float
    by: str


class PipelinesDeclared(Event):
    TYPE: ClassVar[str] = "PIPELINES_DECLARED"

    names: list[str]
    at: float


class TaskCreated(Event):
    TYPE: ClassVar[str] = "TASK_CREATED"

    task_id: str
    owner: str
    pipeline: str
    version: int
    project: str = "default"
    input: Any = None
    overrides: dict[str, bool] = Field(default_factory=dict)
    routing: dict[str, Any] = Field(default_factory=dict)
    at: float


class TaskStarted(Event):
    TYPE: ClassVar[str] = "TASK_STARTED"

    execution: str
    at: float


class TaskRunning(Event):
    TYPE: ClassVar[str] = "TASK_RUNNING"

    at: float


class StageStarted(Event):
    TYPE: ClassVar[str] = "STAGE_STARTED"

    stage: str
    node_type: str
    attempt: int = 1


class StageFinished(Event):
    TYPE: ClassVar[str] = "STAGE_FINISHED"

    stage: str
    output: Any = None
    route: str = ""
    tokens: int = 0
    cost: float = 0.0
    repairs: list[str] = Field(default_factory=list)


class StageFailed(Event):
    TYPE: ClassVar[str] = "STAGE_FAILED"

    stage: str
    signature: dict[str, Any]


class LlmCalled(Event):
    TYPE: ClassVar[str] = "LLM_CALLED"

    stage: str
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float
    latency_ms: float
    prompt: Any = None
    completion: Any = None


class ToolCalled(Event):
    TYPE: ClassVar[str] = "TOOL_CALLED"

    stage: str
    tool: str
    outcome: str
    arguments: Any = None
    message: str | None = None
    dry_run: bool | None = None


class MemoryRetrieved(Event):
    TYPE: ClassVar[str] = "MEMORY_RETRIEVED"

    stage: str
    profile: str
    kept: list[str]
    dropped: list[str]
    tokens: int


class RoutingDecided(Event):
    TYPE: ClassVar[str] = "ROUTING_DECIDED"

    stage: str
    route: str


class WorkspaceChanged(Event):
    TYPE: ClassVar[str] = "WORKSPACE_CHANGED"

    stage: str
    changes: list[dict[str, Any]]
    dry_run: bool


class TaskCompleted(Event):
    TYPE: ClassVar[str] = "TASK_COMPLETED"

    output: Any = None
    last_stage: str | None = None
    at: float


class TaskFailed(Event):
    TYPE: ClassVar[str] = "TASK_FAILED"

    failure: dict[str, Any]
    at: float


class TaskCancelled(Event):
    TYPE: ClassVar[str] = "TASK_CANCELLED"

    by: str
    at: float


class TaskResumed(Event):
    TYPE: ClassVar[str] = "TASK_RESUMED"

    by: str
    at: float


# ---- state and commands --------------------------------------------------------------------------

TaskStatus = Literal["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"]
FINAL: frozenset[str] = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


class PipelineState(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int = 0
    registration: PipelineRegistered | None = None


class StageRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: str = "pending"
    node_type: str = ""
    attempts: int = 0
    output: Any = None
    route: str = ""
    tokens: int = 0
    cost: float = 0.0
    llm_calls: int = 0
    repairs: list[str] = Field(default_factory=list)
    failure: dict[str, Any] | None = None


class TaskState(BaseModel):
    model_config = ConfigDict(frozen=True)

    task_id: str = ""
    owner: str = ""
    pipeline: str = ""
    version: int = 0
    project: str = "default"
    input: Any = None
    overrides: dict[str, bool] = Field(default_factory=dict)
    routing: dict[str, Any] = Field(default_factory=dict)
    status: TaskStatus = "PENDING"
    stages: dict[str, StageRecord] = Field(default_factory=dict)
    executions: list[str] = Field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    mutations: list[dict[str, Any]] = Field(default_factory=list)
    output: Any = None
    failure: dict[str, Any] | None = None
    created_at: float = 0.0
    finished_at: float | None = None

    @property
    def exists(self) -> bool:
        return bool(self.task_id)

    def stage(self, stage_id: str) -> StageRecord:
        return self.stages.get(stage_id) or StageRecord()


@dataclass(frozen=True)
class TaskCommand:
    """Cancel, resume, complete or fail a task (what each needs travels in its fields)."""

    kind: Literal["cancel", "resume", "complete", "fail"]
    by: str
    at: float
    last_stage: str | None = None  # complete: the stage whose output is the task's
    failure: dict[str, Any] | None = None  # fail: Step Functions' Error and Cause
