"""Runs: job templates, directives, runs and their jobs, the container allowlist, and the LLM calls
ledger — the API's request and view models, and the events of the `run#<id>` and `directive#<id>`
streams."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from lighthouse.events.types import Event

NAME = r"^[a-z][a-z0-9_.-]{0,63}$"
CONTAINER_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
AGENT_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
RunStatus = Literal["pending", "running", "success", "failed", "cancelled"]
JobStatus = Literal["pending", "collecting", "analysing", "success", "failed", "cancelled"]
FINAL_RUN_STATUSES: frozenset[str] = frozenset({"success", "failed", "cancelled"})
DirectiveType = Literal["D1", "D2", "D3", "D4"]
JobKind = Literal["log_triage", "gpu_report", "service_map"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# ---- job templates ---------------------------------------------------------------------------


class LlmChoice(Strict):
    """Which model a job's analysis asks. `scripted` answers offline (a deterministic draft made from
    the collected data); any other provider needs a named connection (PUT /connections/{name})."""

    provider: Literal["scripted", "openai", "anthropic", "ollama", "bedrock"] = "scripted"
    model: str = Field(default="scripted-analyst", min_length=1, max_length=128)
    connection: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class JobTemplate(BaseModel):
    task_key: JobKind
    version: int
    title: str
    description: str
    collects: Literal["logs", "gpu", "inventory"]
    targets: Literal["containers", "agents"]
    parameters: dict[str, Any] = Field(description="defaults; a run's parameters override them")
    parameters_schema: dict[str, Any]
    output_schema: dict[str, Any] = Field(description="what the analysis must answer (JSON Schema)")
    artifacts: list[str]
    schedule: str | None = Field(default=None, description="cron (5 fields, UTC) that launches runs of this job")


class JobTemplateList(BaseModel):
    templates: list[JobTemplate]


# ---- directives ------------------------------------------------------------------------------


class DirectiveBody(Strict):
    name: str = Field(min_length=1, max_length=200)
    goals: list[str] = Field(min_length=1, max_length=20)
    constraints: list[str] = Field(default_factory=list, max_length=20)
    output_style: str = Field(default="concise bullet points", min_length=1, max_length=500)


class SaveDirective(DirectiveBody):
    """A D4 (custom) directive's next version."""


class Directive(DirectiveBody):
    directive_id: str
    type: DirectiveType
    version: int
    updated_at: float
    updated_by: str


class DirectiveList(BaseModel):
    directives: list[Directive]


class DirectiveVersions(BaseModel):
    directive_id: str
    versions: list[Directive]


class DirectiveSaved(Event):
    TYPE: ClassVar[str] = "RUN_DIRECTIVE_SAVED"

    directive_id: str
    version: int
    body: dict[str, Any]
    by: str
    at: float


class DirectiveState(BaseModel):
    directive_id: str = ""
    versions: list[Directive] = Field(default_factory=list)


# ---- runs ------------------------------------------------------------------------------------


class JobRequest(Strict):
    job: str = Field(pattern=NAME, description="a job template's task_key")
    parameters: dict[str, Any] = Field(default_factory=dict)
    targets: list[str] = Field(
        default_factory=list, max_length=100, description="container ids or agent ids; none: every allowed one"
    )


class LaunchRun(Strict):
    """One job (`job`, ...) or several (`jobs`), under one directive."""

    job: str | None = Field(default=None, pattern=NAME)
    parameters: dict[str, Any] = Field(default_factory=dict)
    targets: list[str] = Field(default_factory=list, max_length=100)
    jobs: list[JobRequest] = Field(default_factory=list, max_length=10)
    directive: str = Field(default="default", pattern=NAME)
    llm: LlmChoice = Field(default_factory=LlmChoice)
    notify_url: str | None = Field(
        default=None, max_length=2048, pattern=r"^https?://", description="POSTed the run's outcome, signed"
    )


class ArtifactView(BaseModel):
    key: str
    job: str
    name: str
    size: int
    content_type: str
    sha256: str
    url: str | None = Field(default=None, description="a presigned GET, valid for 15 minutes")


class JobView(BaseModel):
    index: int
    job: str
    version: int
    parameters: dict[str, Any]
    targets: list[str]
    status: JobStatus
    collections: dict[str, str] = Field(default_factory=dict, description="target -> fleet command request id")
    refused: dict[str, str] = Field(default_factory=dict, description="target -> why nothing was collected")
    error: str | None = None
    tokens: int = 0
    cost_usd: float = 0.0
    llm_calls: int = 0
    started_at: float | None = None
    ended_at: float | None = None


class RunView(BaseModel):
    run_id: str
    status: RunStatus
    jobs: list[JobView]
    directive: Directive = Field(description="the directive as it was at launch")
    llm: LlmChoice
    launched_by: str
    launched_at: float
    started_at: float | None = None
    ended_at: float | None = None
    execution: str | None = None
    error: str | None = None
    schedule: str | None = None


class RunSummary(BaseModel):
    run_id: str
    status: RunStatus
    jobs: list[str]
    directive: str
    launched_at: float
    ended_at: float | None = None
    launched_by: str = ""  # absent from index entries written before it was


class RunPage(BaseModel):
    runs: list[RunSummary]
    next_token: str | None = None


class SinceLastSuccess(BaseModel):
    job: str
    last_success: RunSummary | None
    runs: list[RunSummary] = Field(description="newest first: every run after the last success, any status")


class RunReport(BaseModel):
    run_id: str
    status: RunStatus
    duration_seconds: float | None
    jobs: list[JobView]
    artifacts: list[ArtifactView]
    tokens: dict[str, int]
    cost_usd: float
    llm_calls: int


class RunAccepted(BaseModel):
    run_id: str
    status: RunStatus


# Run stream events --------------------------------------------------------------------------


class RunLaunched(Event):
    TYPE: ClassVar[str] = "RUN_LAUNCHED"

    run_id: str
    jobs: list[dict[str, Any]]  # {job, version, parameters, targets}
    directive: dict[str, Any]  # the Directive, snapshotted
    llm: dict[str, Any]
    notify_url: str | None = None
    schedule: str | None = None
    by: str
    at: float


class RunStarted(Event):
    TYPE: ClassVar[str] = "RUN_STARTED"

    execution: str
    at: float


class RunJobCollecting(Event):
    TYPE: ClassVar[str] = "RUN_JOB_COLLECTING"

    index: int
    collections: dict[str, str]
    refused: dict[str, str]
    at: float


class RunCollectionRefused(Event):
    """A target the allowlist does not let the job touch: nothing was sent for it."""

    TYPE: ClassVar[str] = "RUN_COLLECTION_REFUSED"

    index: int
    target: str
    reason: str
    at: float


class RunJobAnalysing(Event):
    TYPE: ClassVar[str] = "RUN_JOB_ANALYSING"

    index: int
    at: float


class RunArtifactStored(Event):
    TYPE: ClassVar[str] = "RUN_ARTIFACT_STORED"

    index: int
    key: str
    name: str
    size: int
    content_type: str
    sha256: str


class RunJobSucceeded(Event):
    TYPE: ClassVar[str] = "RUN_JOB_SUCCEEDED"

    index: int
    tokens: int
    cost_usd: float
    llm_calls: int
    at: float


class RunJobFailed(Event):
    TYPE: ClassVar[str] = "RUN_JOB_FAILED"

    index: int
    error: str
    at: float


class RunFinished(Event):
    TYPE: ClassVar[str] = "RUN_FINISHED"

    status: Literal["success", "failed", "cancelled"]
    error: str | None = None
    by: str = "state-machine"
    at: float


class RunState(BaseModel):
    run_id: str = ""
    status: RunStatus = "pending"
    jobs: list[JobView] = Field(default_factory=list)
    directive: dict[str, Any] = Field(default_factory=dict)
    llm: dict[str, Any] = Field(default_factory=dict)
    notify_url: str | None = None
    schedule: str | None = None
    launched_by: str = ""
    launched_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    execution: str | None = None
    error: str | None = None
    artifacts: list[ArtifactView] = Field(default_factory=list)

    @property
    def exists(self) -> bool:
        return bool(self.run_id)


# ---- inventory and allowlist -----------------------------------------------------------------


class AllowlistEntry(Strict):
    container_id: str = Field(pattern=CONTAINER_ID)
    enabled: bool = True
    tags: list[str] = Field(default_factory=list, max_length=20)
    description: str = Field(default="", max_length=500)


class Allowlist(BaseModel):
    entries: list[AllowlistEntry]
    updated_at: float | None = None
    updated_by: str | None = None


class SetAllowlist(Strict):
    """The whole allowlist (a PUT replaces it)."""

    entries: list[AllowlistEntry] = Field(max_length=1000)


class InventoryContainer(BaseModel):
    agent_id: str
    container_id: str
    name: str = ""
    image: str = ""
    state: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    ports: list[dict[str, Any]] = Field(default_factory=list)
    allowlisted: bool = False
    enabled: bool = False
    reported_at: float | None = None


class Inventory(BaseModel):
    allowlist: list[AllowlistEntry]
    containers: list[InventoryContainer]
    agents: dict[str, dict[str, Any]] = Field(description="agent id -> its inventory snapshot's docker status")


# ---- the LLM calls ledger (token-only) -------------------------------------------------------


class LedgerEntry(BaseModel):
    """One LLM call, as Lighthouse accounts for it. No field can hold a prompt or a response: the
    model forbids extra fields and every string is a bounded identifier (checked by a test)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    call_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{8,128}$")
    at: float
    source: Literal["pipeline", "validation", "run"]
    provider: str = Field(max_length=32)
    model: str = Field(max_length=128)
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cache_read_tokens: int = Field(default=0, ge=0)
    cache_write_tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(ge=0)
    priced: bool = Field(description="False: no price was known for this model (cost 0)")
    latency_ms: float = Field(ge=0)
    run_id: str | None = Field(default=None, max_length=64)
    job: str | None = Field(default=None, max_length=64)
    task_id: str | None = Field(default=None, max_length=64)
    agent_id: str | None = Field(default=None, max_length=128)
    directive: str | None = Field(default=None, max_length=64)


class UsageRow(BaseModel):
    key: str
    calls: int
    input_tokens: int
    output_tokens: int
    cache_tokens: int
    cost_usd: float


class TokenStats(BaseModel):
    since: str
    until: str
    by_model: list[UsageRow]
    by_provider: list[UsageRow]
    by_day: list[UsageRow]


class CostReport(BaseModel):
    since: str
    until: str
    total_usd: float
    by_model: list[UsageRow]
    by_run: list[UsageRow]
    by_directive: list[UsageRow]
    by_agent: list[UsageRow]


class UsageByDirective(BaseModel):
    since: str
    until: str
    directives: list[UsageRow]


# ---- notifications ---------------------------------------------------------------------------


class RunNotification(BaseModel):
    """What a run's notify_url is POSTed when the run ends (signed; see runs.webhooks)."""

    event: Literal["run.finished"] = "run.finished"
    run_id: str
    status: RunStatus
    jobs: list[dict[str, Any]]
    error: str | None = None
    ended_at: float | None = None
    delivery_id: str
