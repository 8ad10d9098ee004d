"""Request and view models of the pipelines API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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
