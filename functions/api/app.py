"""The HTTP API (API Gateway -> this Chalice app). Each route declares what it accepts and who may
call it (see `lighthouse.api.endpoints`), then calls one service."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from chalice.app import Chalice, Request, Response

from lighthouse.agents.models import (
    AgentPage,
    AgentRegistration,
    AgentView,
    HeartbeatRequest,
    HeartbeatResponse,
    RegisterAgent,
    SessionRequest,
    SessionResponse,
    SetProjects,
)
from lighthouse.agents.service import AgentService
from lighthouse.api.endpoints import ADMIN, Endpoints, json_response
from lighthouse.api.endpoints import logger as api_logger
from lighthouse.api.guards import Guards
from lighthouse.api.openapi import build_openapi
from lighthouse.api.params import CURSOR, WAIT, Query, limit
from lighthouse.auth.hook_tokens import HookToken, HookTokens, RevokedHookToken, hook_authorization
from lighthouse.auth.keys import webhook_signing_key
from lighthouse.auth.tokens import Principal
from lighthouse.clock import Clock
from lighthouse.composition import Components, IdempotentCreate, lazy_root
from lighthouse.console.api import add_routes as add_console_routes
from lighthouse.console.parts import console_service
from lighthouse.console.service import ConsoleService
from lighthouse.elicitation.logic import MAX_INBOX_CURSOR_CHARS
from lighthouse.elicitation.models import (
    AnsweredPage,
    CreatedElicitation,
    CreateElicitation,
    ElicitationMetrics,
    ElicitationView,
    PendingPage,
    RespondResult,
    RespondToElicitation,
)
from lighthouse.elicitation.service import ElicitationService
from lighthouse.errors import Conflict, LighthouseError, MalformedRequest
from lighthouse.flags.api import add_routes as add_flags_routes
from lighthouse.flags.service import FlagsService
from lighthouse.fleet.models import (
    CommandAccepted,
    CommandView,
    ComponentUpload,
    ComponentUploadUrl,
    FleetAgentDetail,
    FleetAgentView,
    FleetPage,
    MqttCredentials,
    SendCommand,
    SetTags,
    StartRollout,
)
from lighthouse.fleet.rollout_service import RolloutService
from lighthouse.fleet.rollouts import RolloutView
from lighthouse.fleet.service import FleetService
from lighthouse.health import Check, run_checks
from lighthouse.history.api import add_routes as add_history_routes
from lighthouse.history.service import HistoryService
from lighthouse.history.views import HistoryViews
from lighthouse.lazy import Lazy
from lighthouse.observability import instrumented
from lighthouse.pipelines.connections import Connection, ConnectionList, ConnectionStore, ConnectionView
from lighthouse.pipelines.models import (
    CreateTask,
    MemoryPage,
    PipelineList,
    PipelineView,
    RegisterPipelines,
    Registration,
    Remember,
    Remembered,
    TaskView,
)
from lighthouse.pipelines.registry import PipelineRegistry
from lighthouse.pipelines.service import TaskService
from lighthouse.runs.api import add_routes as add_runs_routes
from lighthouse.runs.service import RunService
from lighthouse.validation.models import (
    AuditPage,
    PolicyDocument,
    PolicyView,
    PreToolUseInput,
    PreToolUseOutput,
    ValidateRequest,
    ValidationResult,
    hook_output,
)
from lighthouse.validation.service import ValidationService


@dataclass(frozen=True)
class ApiRoot:
    """What the API's views use; composed once per container (see `compose`)."""

    guards: Guards
    agents: AgentService
    hook_tokens: HookTokens
    elicitations: ElicitationService
    idempotent_create: IdempotentCreate
    validations: ValidationService
    pipelines: PipelineRegistry
    tasks: TaskService
    connections: ConnectionStore
    fleet: Lazy[FleetService]
    rollouts: Lazy[RolloutService]
    runs: Lazy[RunService]
    history: Lazy[HistoryService]
    views: Lazy[HistoryViews]
    flags: Lazy[FlagsService]
    console: Lazy[ConsoleService]
    clock: Clock
    webhook_key: Lazy[bytes]
    health_checks: dict[str, Check]


def compose(parts: Components) -> ApiRoot:
    return ApiRoot(
        guards=parts.api_guards,
        agents=parts.agents,
        hook_tokens=parts.hook_tokens,
        elicitations=parts.elicitations,
        idempotent_create=parts.idempotent_create,
        validations=parts.validations,
        pipelines=parts.pipelines,
        tasks=parts.tasks,
        connections=parts.connections,
        fleet=Lazy(lambda: parts.fleet),
        rollouts=Lazy(lambda: parts.fleet_rollouts),
        runs=Lazy(lambda: parts.runs),
        history=Lazy(lambda: parts.history),
        views=Lazy(lambda: parts.history_views),
        flags=Lazy(lambda: parts.flags),
        console=Lazy(lambda: console_service(parts, endpoints.recent)),
        clock=parts.clock,
        webhook_key=parts.master_secret.map(webhook_signing_key),
        health_checks=parts.health_checks(),
    )


endpoints: Endpoints[ApiRoot] = Endpoints(guards=lambda api: api.guards)
MAX_IDEMPOTENCY_KEY = 255
PAGE = (limit(50, 200), CURSOR)
KiB = 1024


@endpoints.route("/health", "GET", public=True, summary="Report each dependency's health (200 or 503)")
def health(api: ApiRoot, request: Request, principal: None) -> Any:
    healthy, report = run_checks(api.health_checks)
    return json_response(200 if healthy else 503, {"status": "ok" if healthy else "degraded", "dependencies": report})


@endpoints.route("/openapi.json", "GET", public=True, summary="This API's OpenAPI 3.1 document")
def openapi_document(api: ApiRoot, request: Request, principal: None) -> Any:
    return json_response(200, build_openapi(endpoints.docs))


# ---- agents ------------------------------------------------------------------------------------


@endpoints.route(
    "/sessions",
    "POST",
    public=True,
    status=201,
    summary="Exchange a signed proof of the agent secret for a bearer token",
    body=SessionRequest,
    max_body=2 * KiB,
    response_model=SessionResponse,
    errors=(401, 429),
)
def create_session(api: ApiRoot, request: Request, principal: None, body: SessionRequest) -> SessionResponse:
    source = str(((request.context or {}).get("identity") or {}).get("sourceIp") or "unknown")
    return api.agents.create_session(body, source)


@endpoints.route(
    "/agents/heartbeat",
    "POST",
    objects="the caller itself",
    summary="Record that the calling agent is alive",
    body=HeartbeatRequest,
    max_body=8 * KiB,
    response_model=HeartbeatResponse,
    own_rate_limit=True,
)
def heartbeat(api: ApiRoot, request: Request, principal: Principal, body: HeartbeatRequest) -> HeartbeatResponse:
    return api.agents.heartbeat(principal, body)


@endpoints.route(
    "/agents",
    "POST",
    roles=ADMIN,
    status=201,
    summary="Register an agent: its role, metadata and projects; the answer holds its secret (shown once)",
    body=RegisterAgent,
    max_body=8 * KiB,
    response_model=AgentRegistration,
    errors=(409,),
)
def register_agent(api: ApiRoot, request: Request, principal: Principal, body: RegisterAgent) -> AgentRegistration:
    return api.agents.register(body.agent_id, body.role, body.metadata, body.projects)


@endpoints.route("/agents", "GET", summary="List agents with presence", response_model=AgentPage, query=PAGE)
def list_agents(api: ApiRoot, request: Request, principal: Principal, limit: int, next_token: str | None) -> AgentPage:
    return api.agents.list(limit, next_token)


@endpoints.route(
    "/agents/{agent_id}", "GET", summary="One agent's role, presence, metadata and projects", response_model=AgentView
)
def get_agent(api: ApiRoot, request: Request, principal: Principal, agent_id: str) -> AgentView:
    return api.agents.get(agent_id)


@endpoints.route(
    "/agents/{agent_id}/projects",
    "PUT",
    roles=ADMIN,
    summary="Replace the projects an agent belongs to (their memory and pipelines are then open to it)",
    body=SetProjects,
    max_body=4 * KiB,
    response_model=AgentView,
)
def set_projects(api: ApiRoot, request: Request, principal: Principal, agent_id: str, body: SetProjects) -> AgentView:
    return api.agents.set_projects(principal, agent_id, body.projects)


# ---- elicitation -------------------------------------------------------------------------------


@endpoints.route(
    "/elicitation/create",
    "POST",
    status=201,
    summary="Ask another agent for data matching a JSON Schema, with a deadline (Idempotency-Key honoured)",
    body=CreateElicitation,
    max_body=32 * KiB,
    response_model=CreatedElicitation,
    errors=(404, 409),
    own_rate_limit=True,
)
def create_elicitation(api: ApiRoot, request: Request, principal: Principal, body: CreateElicitation) -> Any:
    key = request.headers.get("idempotency-key")
    if key is None:
        return api.elicitations.create(principal, body)
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable() or not key.isascii():
        raise MalformedRequest(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters")
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    try:
        return api.idempotent_create(
            {
                "agent": principal.agent_id,
                "key": key,
                "principal": asdict(principal),
                "body": body.model_dump(mode="json", by_alias=True),
            },
            request.lambda_context,
        )
    except IdempotencyValidationError as error:
        raise Conflict("this Idempotency-Key was used with a different body") from error
    except IdempotencyAlreadyInProgressError as error:
        raise Conflict("a request with this Idempotency-Key is still in progress; retry shortly") from error


AFTER = Query(
    "after",
    "cursor",
    "the `cursor` of an earlier page: list (and wait for) only questions it had not shown",
    max_length=MAX_INBOX_CURSOR_CHARS,
)


@endpoints.route(
    "/elicitation/pending",
    "GET",
    objects="the caller's own inbox",
    summary="Open elicitations for the caller, urgent first then oldest; ?after=<cursor>&wait=N waits for new ones",
    response_model=PendingPage,
    query=(*PAGE, WAIT, AFTER),
)
def pending_elicitations(
    api: ApiRoot,
    request: Request,
    principal: Principal,
    limit: int,
    next_token: str | None,
    wait: int,
    after: str | None,
) -> PendingPage:
    return api.elicitations.pending(principal, limit, next_token, wait, after)


@endpoints.route(
    "/elicitation/answered",
    "GET",
    objects="the caller's own answers",
    summary="What the caller answered (accepted or declined), newest first, each signature checked",
    response_model=AnsweredPage,
    query=PAGE,
)
def answered_elicitations(
    api: ApiRoot, request: Request, principal: Principal, limit: int, next_token: str | None
) -> AnsweredPage:
    return api.elicitations.answered(principal, limit, next_token)


@endpoints.route(
    "/elicitation/respond",
    "POST",
    objects="the target of the elicitation",
    summary="Accept (with schema-valid data) or decline an elicitation addressed to the caller",
    body=RespondToElicitation,
    max_body=80 * KiB,
    response_model=RespondResult,
    errors=(403, 404, 409),
    own_rate_limit=True,
)
def respond_to_elicitation(
    api: ApiRoot, request: Request, principal: Principal, body: RespondToElicitation
) -> RespondResult:
    return api.elicitations.respond(principal, body)


@endpoints.route(
    "/elicitation/{elicitation_id}/cancel",
    "POST",
    objects="its requester",
    summary="Cancel an open elicitation (requester only)",
    response_model=ElicitationView,
    errors=(403, 409),
)
def cancel_elicitation(api: ApiRoot, request: Request, principal: Principal, elicitation_id: str) -> ElicitationView:
    return api.elicitations.cancel(principal, elicitation_id)


@endpoints.route(
    "/elicitation/status/{elicitation_id}",
    "GET",
    objects="its requester and target (the signed answer: the requester), admins",
    summary="Status, timestamps and (for the requester) the signed response; ?wait=N waits for an end",
    response_model=ElicitationView,
    errors=(403,),
    query=(WAIT,),
)
def elicitation_status(
    api: ApiRoot, request: Request, principal: Principal, elicitation_id: str, wait: int
) -> ElicitationView:
    return api.elicitations.status(principal, elicitation_id, wait)


@endpoints.route(
    "/elicitation/metrics",
    "GET",
    summary="Counts by status, answer latency percentiles, expiries, rate-limit rejections, violations",
    response_model=ElicitationMetrics,
)
def elicitation_metrics(api: ApiRoot, request: Request, principal: Principal) -> ElicitationMetrics:
    return api.elicitations.metrics()


# ---- validation --------------------------------------------------------------------------------


@endpoints.route(
    "/validate",
    "POST",
    summary="Decide a tool call: approved, blocked, or escalate (to experts when enough are available)",
    body=ValidateRequest,
    max_body=128 * KiB,
    response_model=ValidationResult,
    own_rate_limit=True,
)
def validate(api: ApiRoot, request: Request, principal: Principal, body: ValidateRequest) -> ValidationResult:
    return api.validations.validate(principal, body)


@endpoints.route(
    "/validate/{request_id}",
    "GET",
    objects="its requester, experts, admins",
    summary="A validation request's decision, votes and consensus; ?wait=N waits for the experts",
    response_model=ValidationResult,
    errors=(403,),
    query=(WAIT,),
)
def validation_result(
    api: ApiRoot, request: Request, principal: Principal, request_id: str, wait: int
) -> ValidationResult:
    return api.validations.result(principal, request_id, wait)


AUDIT_AGENT = Query(
    "agent", "str", "whose audit (admins only; default: the caller; `*`: every agent's)",
    pattern=r"^([A-Za-z0-9._:-]+|\*)$",
)  # fmt: skip


@endpoints.route(
    "/validation/audit",
    "GET",
    objects="the caller's own; any agent's for admins",
    summary="An agent's validation requests and decisions, newest first (another agent's: admins only)",
    response_model=AuditPage,
    errors=(403,),
    query=(AUDIT_AGENT, *PAGE),
)
def validation_audit(
    api: ApiRoot, request: Request, principal: Principal, agent: str | None, limit: int, next_token: str | None
) -> AuditPage:
    return api.validations.audit(principal, agent, limit, next_token)


@endpoints.route(
    "/validation/policies",
    "GET",
    summary="The Cedar policies in force, their version and the Cedar schema they are validated against",
    response_model=PolicyView,
)
def validation_policies(api: ApiRoot, request: Request, principal: Principal) -> PolicyView:
    return api.validations.policy()


@endpoints.route(
    "/validation/policies",
    "PUT",
    roles=ADMIN,
    summary="Replace the Cedar policies; parsed and validated in a worker process, recorded as a new version",
    body=PolicyDocument,
    max_body=80 * KiB,
    response_model=PolicyView,
    errors=(409,),
)
def replace_validation_policies(
    api: ApiRoot, request: Request, principal: Principal, body: PolicyDocument
) -> PolicyView:
    return api.validations.replace_policy(principal, body.policies)


@endpoints.route(
    "/hooks/token",
    "POST",
    status=201,
    summary="Issue the caller a long-lived hook token for Claude Code's hook headers",
    response_model=HookToken,
)
def issue_hook_token(api: ApiRoot, request: Request, principal: Principal) -> HookToken:
    return api.hook_tokens.issue(principal)


@endpoints.route(
    "/hooks/token/{token_id}",
    "DELETE",
    objects="its owner, admins",
    summary="Revoke a hook token (its owner or an admin); hook calls with it are denied from then on",
    response_model=RevokedHookToken,
    errors=(403, 409),
)
def revoke_hook_token(api: ApiRoot, request: Request, principal: Principal, token_id: str) -> RevokedHookToken:
    return api.hook_tokens.revoke(principal, token_id)


def _hook_denial(status: int, error: LighthouseError) -> Response:
    """Claude Code ignores a hook's non-2xx answer and runs the tool: every failure is a 200 deny."""
    reason = f"Lighthouse could not validate this call ({error.code}): {error.message}"
    if error.details.get("fields"):
        reason += " " + "; ".join(f"{f['path']}: {f.get('message', '')}" for f in error.details["fields"][:5])
    return json_response(
        200, hook_output("deny", reason), {"X-Lighthouse-Error": error.code, "X-Lighthouse-Status": str(status)}
    )


@endpoints.route(
    "/hooks/claude-code/pre-tool-use",
    "POST",
    objects="a valid, unrevoked hook token",
    public=True,
    summary="Claude Code PreToolUse hook (http): hook input in, a decision out, always 200 (failures deny)",
    body=PreToolUseInput,
    max_body=256 * KiB,
    response_model=PreToolUseOutput,
    error_view=_hook_denial,
)
def claude_code_pre_tool_use(
    api: ApiRoot, request: Request, principal: None, body: PreToolUseInput
) -> PreToolUseOutput:
    caller = api.hook_tokens.verify_header(hook_authorization(request.headers))
    return api.validations.hook(caller, body)


# ---- pipelines ---------------------------------------------------------------------------------


@endpoints.route(
    "/pipelines",
    "POST",
    roles=ADMIN,
    status=201,
    summary="Register a config directory: validate every manifest, compile each workflow to a state machine",
    body=RegisterPipelines,
    max_body=256 * KiB,
    response_model=Registration,
    errors=(409,),
)
def register_pipelines(api: ApiRoot, request: Request, principal: Principal, body: RegisterPipelines) -> Registration:
    return api.pipelines.register(principal, body.files)


@endpoints.route("/pipelines", "GET", summary="Registered pipelines, in routing order", response_model=PipelineList)
def list_pipelines(api: ApiRoot, request: Request, principal: Principal) -> PipelineList:
    return api.pipelines.pipelines()


@endpoints.route(
    "/pipelines/{name}",
    "GET",
    summary="A pipeline's latest version: its compiled definition and manifests",
    response_model=PipelineView,
)
def get_pipeline(api: ApiRoot, request: Request, principal: Principal, name: str) -> PipelineView:
    return api.pipelines.pipeline(name)


@endpoints.route(
    "/tasks",
    "POST",
    objects="members of the pipeline's project, admins",
    status=201,
    summary="Start a task (members of the pipeline's project): the named pipeline, or the first that matches",
    body=CreateTask,
    max_body=64 * KiB,
    response_model=TaskView,
    errors=(403,),
)
def create_task(api: ApiRoot, request: Request, principal: Principal, body: CreateTask) -> TaskView:
    return api.tasks.create_task(principal, body)


@endpoints.route(
    "/tasks/{task_id}",
    "GET",
    objects="its creator, admins",
    summary="A task: status, stage outputs, tokens, cost, workspace changes, failure; ?wait=N for its end",
    response_model=TaskView,
    errors=(403,),
    query=(WAIT,),
)
def get_task(api: ApiRoot, request: Request, principal: Principal, task_id: str, wait: int) -> TaskView:
    return api.tasks.task(principal, task_id, wait)


@endpoints.route(
    "/tasks/{task_id}/cancel",
    "POST",
    objects="its creator, admins",
    summary="Cancel a task that has not ended",
    response_model=TaskView,
    errors=(403, 409),
)
def cancel_task(api: ApiRoot, request: Request, principal: Principal, task_id: str) -> TaskView:
    return api.tasks.cancel(principal, task_id)


@endpoints.route(
    "/tasks/{task_id}/resume",
    "POST",
    objects="its creator, admins",
    summary="Resume a FAILED task from the stage that failed (finished stages are not run again)",
    response_model=TaskView,
    errors=(403, 409),
)
def resume_task(api: ApiRoot, request: Request, principal: Principal, task_id: str) -> TaskView:
    return api.tasks.resume(principal, task_id)


@endpoints.route(
    "/memory",
    "POST",
    objects="project memory: the project's member agents and admins; global memory: admins",
    status=201,
    summary="Add to a project's memory (its members) or the global memory (admins)",
    body=Remember,
    max_body=16 * KiB,
    response_model=Remembered,
    errors=(403,),
)
def remember(api: ApiRoot, request: Request, principal: Principal, body: Remember) -> Remembered:
    return api.tasks.remember(principal, body)


@endpoints.route(
    "/connections",
    "GET",
    roles=ADMIN,
    summary="Named LLM connections pipelines may use (provider, URL, whether a key is set; never the key)",
    response_model=ConnectionList,
)
def list_connections(api: ApiRoot, request: Request, principal: Principal) -> ConnectionList:
    return api.connections.list()


@endpoints.route(
    "/connections/{connection}",
    "PUT",
    roles=ADMIN,
    summary="Create or replace a named LLM connection: provider, the only base URL its key is sent to, the key",
    body=Connection,
    max_body=8 * KiB,
    response_model=ConnectionView,
)
def put_connection(
    api: ApiRoot, request: Request, principal: Principal, connection: str, body: Connection
) -> ConnectionView:
    return api.connections.put(connection, body)


@endpoints.route(
    "/connections/{connection}",
    "DELETE",
    roles=ADMIN,
    status=204,
    summary="Delete a named LLM connection (stages that name it then fail with a config error)",
)
def delete_connection(api: ApiRoot, request: Request, principal: Principal, connection: str) -> Response:
    api.connections.delete(connection)
    return Response(body="", status_code=204)


MEMORY_QUERY = (
    Query("store", "str", "a store name from memory.yaml", pattern=r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$", required=True),
    Query("scope", "choice", "project (its members) or global", "project", choices=("project", "global")),
    Query("project", "str", "the project, for scope=project", pattern=r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$"),
    limit(50, 200),
)


@endpoints.route(
    "/memory",
    "GET",
    objects="project memory: the project's members and admins; global memory: anyone signed in",
    summary="The newest items of a memory store (a project's: its members and admins)",
    response_model=MemoryPage,
    errors=(403,),
    query=MEMORY_QUERY,
)
def recall(
    api: ApiRoot, request: Request, principal: Principal, store: str, scope: str, project: str | None, limit: int
) -> MemoryPage:
    return api.tasks.recall(principal, store, scope, project, limit)


# ---- fleet -------------------------------------------------------------------------------------

FLEET_FILTERS = (
    Query("status", "choice", "online, offline or unknown", choices=("online", "offline", "unknown")),
    Query("component", "str", "agents with this component installed", pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$"),
    Query("tag", "str", "agents with this tag", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:=-]{0,63}$"),
)


@endpoints.route(
    "/fleet/mqtt-credentials",
    "POST",
    objects="the caller's own MQTT account",
    summary="MQTT credentials for the caller (username = its id); a new request replaces the last password",
    response_model=MqttCredentials,
    errors=(404, 503),
)
def mqtt_credentials(api: ApiRoot, request: Request, principal: Principal) -> MqttCredentials:
    return api.fleet.get().mqtt_credentials(principal)


@endpoints.route(
    "/fleet/components",
    "POST",
    roles=ADMIN,
    status=201,
    summary="A presigned URL to upload a component wheel to; install commands then name it artifact:components/...",
    body=ComponentUpload,
    max_body=1 * KiB,
    response_model=ComponentUploadUrl,
)
def component_upload(api: ApiRoot, request: Request, principal: Principal, body: ComponentUpload) -> ComponentUploadUrl:
    return api.fleet.get().component_upload(body.filename)


@endpoints.route(
    "/fleet/agents",
    "GET",
    roles=ADMIN,
    summary="The fleet: each agent's presence, core version, components and tags (?status=&component=&tag=)",
    response_model=FleetPage,
    query=(*PAGE, *FLEET_FILTERS),
)
def fleet_agents(
    api: ApiRoot,
    request: Request,
    principal: Principal,
    limit: int,
    next_token: str | None,
    status: str | None,
    component: str | None,
    tag: str | None,
) -> FleetPage:
    return api.fleet.get().agents(limit, next_token, status, component, tag)


@endpoints.route(
    "/fleet/agents/{agent_id}",
    "GET",
    roles=ADMIN,
    summary="One agent's fleet detail: every retained snapshot it last published",
    response_model=FleetAgentDetail,
)
def fleet_agent(api: ApiRoot, request: Request, principal: Principal, agent_id: str) -> FleetAgentDetail:
    return api.fleet.get().agent(agent_id)


@endpoints.route(
    "/fleet/agents/{agent_id}/tags",
    "PUT",
    roles=ADMIN,
    summary="Replace an agent's fleet tags (rollout selectors and ?tag= use them)",
    body=SetTags,
    max_body=4 * KiB,
    response_model=FleetAgentView,
)
def fleet_tags(api: ApiRoot, request: Request, principal: Principal, agent_id: str, body: SetTags) -> FleetAgentView:
    return api.fleet.get().set_tags(principal, agent_id, body.tags)


@endpoints.route(
    "/fleet/agents/{agent_id}/commands",
    "POST",
    roles=ADMIN,
    status=202,
    summary="Send install, uninstall, refresh or cfg_set to an agent (waits up to ttl_seconds for it if offline)",
    body=SendCommand,
    max_body=16 * KiB,
    response_model=CommandAccepted,
    errors=(404, 503),
)
def send_command(
    api: ApiRoot, request: Request, principal: Principal, agent_id: str, body: SendCommand
) -> CommandAccepted:
    return api.fleet.get().send(principal, agent_id, body)


@endpoints.route(
    "/fleet/commands/{command_id}",
    "GET",
    roles=ADMIN,
    summary="A command's status and the agent's result; ?wait=N waits for the result",
    response_model=CommandView,
    query=(WAIT,),
)
def fleet_command(api: ApiRoot, request: Request, principal: Principal, command_id: str, wait: int) -> CommandView:
    return api.fleet.get().command(command_id, wait)


@endpoints.route(
    "/fleet/rollouts",
    "POST",
    roles=ADMIN,
    status=202,
    summary="Send a command to the agents a selector names: a canary, then batches; halts past max_failure_percent",
    body=StartRollout,
    max_body=256 * KiB,
    response_model=RolloutView,
)
def start_rollout(api: ApiRoot, request: Request, principal: Principal, body: StartRollout) -> RolloutView:
    return api.rollouts.get().start(principal, body)


@endpoints.route(
    "/fleet/rollouts/{rollout_id}",
    "GET",
    roles=ADMIN,
    summary="A rollout's progress: its batches, each agent's outcome, the failure rate so far",
    response_model=RolloutView,
)
def get_rollout(api: ApiRoot, request: Request, principal: Principal, rollout_id: str) -> RolloutView:
    return api.rollouts.get().get(rollout_id)


# ---- runs (declared in lighthouse.runs.api) ------------------------------------------------------

add_runs_routes(endpoints, lambda api: api.runs.get(), lambda api: api.webhook_key.get())
add_history_routes(
    endpoints,
    history_of=lambda api: api.history.get(),
    views_of=lambda api: api.views.get(),
    hook_caller=lambda api, headers: api.hook_tokens.verify_header(hook_authorization(headers)),
    now=lambda api: api.clock.now(),
    charge=lambda api, caller: api.guards.charge(caller),
)
add_flags_routes(endpoints, lambda api: api.flags.get())
add_console_routes(endpoints, lambda api: api.console.get())


def create_app(root: Callable[[], ApiRoot]) -> Chalice:
    """The Chalice app serving every route with `root()` (tests pass a root they composed)."""
    return endpoints.bind(Chalice(app_name="lighthouse-api"), root)


app = create_app(lazy_root(compose))
handler = instrumented(api_logger, app)
