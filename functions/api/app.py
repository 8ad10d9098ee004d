"""The HTTP API (API Gateway -> this Chalice app). Each route declares what it accepts and who may
call it (see `lighthouse.api.endpoints`), then calls one service."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from chalice.app import Chalice, Request, Response

from lighthouse import wiring
from lighthouse.agents.models import (
    AgentPage,
    AgentView,
    HeartbeatRequest,
    HeartbeatResponse,
    SessionRequest,
    SessionResponse,
    SetProjects,
)
from lighthouse.api.endpoints import ADMIN, Endpoints, json_response
from lighthouse.api.openapi import build_openapi
from lighthouse.api.params import CURSOR, WAIT, Query, limit
from lighthouse.auth.hook_tokens import HookToken, RevokedHookToken
from lighthouse.auth.tokens import Principal
from lighthouse.elicitation.models import (
    CreatedElicitation,
    CreateElicitation,
    ElicitationMetrics,
    ElicitationView,
    PendingPage,
    RespondResult,
    RespondToElicitation,
)
from lighthouse.errors import Conflict, LighthouseError, MalformedRequest, Unauthenticated
from lighthouse.health import run_checks
from lighthouse.pipelines.connections import Connection, ConnectionList, ConnectionView
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

app = Chalice(app_name="lighthouse-api")
endpoints = Endpoints(app, guards=wiring.api_guards)
MAX_IDEMPOTENCY_KEY = 255
PAGE = (limit(50, 200), CURSOR)
KiB = 1024


@endpoints.route("/health", "GET", public=True, summary="Report each dependency's health (200 or 503)")
def health(request: Request, principal: None) -> Any:
    healthy, report = run_checks(wiring.health_checks())
    return json_response(200 if healthy else 503, {"status": "ok" if healthy else "degraded", "dependencies": report})


@endpoints.route("/openapi.json", "GET", public=True, summary="This API's OpenAPI 3.1 document")
def openapi_document(request: Request, principal: None) -> Any:
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
def create_session(request: Request, principal: None, body: SessionRequest) -> SessionResponse:
    source = str(((request.context or {}).get("identity") or {}).get("sourceIp") or "unknown")
    return wiring.agent_service().create_session(body, source)


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
def heartbeat(request: Request, principal: Principal, body: HeartbeatRequest) -> HeartbeatResponse:
    return wiring.agent_service().heartbeat(principal, body)


@endpoints.route("/agents", "GET", summary="List agents with presence", response_model=AgentPage, query=PAGE)
def list_agents(request: Request, principal: Principal, limit: int, next_token: str | None) -> AgentPage:
    return wiring.agent_service().list(limit, next_token)


@endpoints.route(
    "/agents/{agent_id}", "GET", summary="One agent's role, presence, metadata and projects", response_model=AgentView
)
def get_agent(request: Request, principal: Principal, agent_id: str) -> AgentView:
    return wiring.agent_service().get(agent_id)


@endpoints.route(
    "/agents/{agent_id}/projects",
    "PUT",
    roles=ADMIN,
    summary="Replace the projects an agent belongs to (their memory and pipelines are then open to it)",
    body=SetProjects,
    max_body=4 * KiB,
    response_model=AgentView,
)
def set_projects(request: Request, principal: Principal, agent_id: str, body: SetProjects) -> AgentView:
    return wiring.agent_service().set_projects(principal, agent_id, body.projects)


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
def create_elicitation(request: Request, principal: Principal, body: CreateElicitation) -> Any:
    key = request.headers.get("idempotency-key")
    if key is None:
        return wiring.elicitation_service().create(principal, body)
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable() or not key.isascii():
        raise MalformedRequest(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters")
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    # In-progress records then expire with this invocation, not after a fixed hour.
    wiring.idempotency_config().register_lambda_context(app.lambda_context)
    try:
        return wiring.idempotent_create()(
            request={
                "agent": principal.agent_id,
                "key": key,
                "principal": asdict(principal),
                "body": body.model_dump(mode="json", by_alias=True),
            }
        )
    except IdempotencyValidationError as error:
        raise Conflict("this Idempotency-Key was used with a different body") from error
    except IdempotencyAlreadyInProgressError as error:
        raise Conflict("a request with this Idempotency-Key is still in progress; retry shortly") from error


@endpoints.route(
    "/elicitation/pending",
    "GET",
    objects="the caller's own inbox",
    summary="Open elicitations addressed to the caller, urgent first then oldest",
    response_model=PendingPage,
    query=(*PAGE, WAIT),
)
def pending_elicitations(
    request: Request, principal: Principal, limit: int, next_token: str | None, wait: int
) -> PendingPage:
    return wiring.elicitation_service().pending(principal, limit, next_token, wait)


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
def respond_to_elicitation(request: Request, principal: Principal, body: RespondToElicitation) -> RespondResult:
    return wiring.elicitation_service().respond(principal, body)


@endpoints.route(
    "/elicitation/{elicitation_id}/cancel",
    "POST",
    objects="its requester",
    summary="Cancel an open elicitation (requester only)",
    response_model=ElicitationView,
    errors=(403, 409),
)
def cancel_elicitation(request: Request, principal: Principal, elicitation_id: str) -> ElicitationView:
    return wiring.elicitation_service().cancel(principal, elicitation_id)


@endpoints.route(
    "/elicitation/status/{elicitation_id}",
    "GET",
    objects="its requester and target (the signed answer: the requester), admins",
    summary="Status, timestamps and (for the requester) the signed response; ?wait=N waits for an end",
    response_model=ElicitationView,
    errors=(403,),
    query=(WAIT,),
)
def elicitation_status(request: Request, principal: Principal, elicitation_id: str, wait: int) -> ElicitationView:
    return wiring.elicitation_service().status(principal, elicitation_id, wait)


@endpoints.route(
    "/elicitation/metrics",
    "GET",
    summary="Counts by status, answer latency percentiles, expiries, rate-limit rejections, violations",
    response_model=ElicitationMetrics,
)
def elicitation_metrics(request: Request, principal: Principal) -> ElicitationMetrics:
    return wiring.elicitation_service().metrics()


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
def validate(request: Request, principal: Principal, body: ValidateRequest) -> ValidationResult:
    return wiring.validation_service().validate(principal, body)


@endpoints.route(
    "/validate/{request_id}",
    "GET",
    objects="its requester, experts, admins",
    summary="A validation request's decision, votes and consensus; ?wait=N waits for the experts",
    response_model=ValidationResult,
    errors=(403,),
    query=(WAIT,),
)
def validation_result(request: Request, principal: Principal, request_id: str, wait: int) -> ValidationResult:
    return wiring.validation_service().result(principal, request_id, wait)


AUDIT_AGENT = Query("agent", "str", "whose audit (admins only; default: the caller)", pattern=r"^[A-Za-z0-9._:-]+$")


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
    request: Request, principal: Principal, agent: str | None, limit: int, next_token: str | None
) -> AuditPage:
    return wiring.validation_service().audit(principal, agent, limit, next_token)


@endpoints.route(
    "/validation/policies",
    "GET",
    summary="The Cedar policies in force, their version and the Cedar schema they are validated against",
    response_model=PolicyView,
)
def validation_policies(request: Request, principal: Principal) -> PolicyView:
    return wiring.validation_service().policy()


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
def replace_validation_policies(request: Request, principal: Principal, body: PolicyDocument) -> PolicyView:
    return wiring.validation_service().replace_policy(principal, body.policies)


@endpoints.route(
    "/hooks/token",
    "POST",
    status=201,
    summary="Issue the caller a long-lived hook token for Claude Code's hook headers",
    response_model=HookToken,
)
def issue_hook_token(request: Request, principal: Principal) -> HookToken:
    return wiring.hook_tokens().issue(principal)


@endpoints.route(
    "/hooks/token/{token_id}",
    "DELETE",
    objects="its owner, admins",
    summary="Revoke a hook token (its owner or an admin); hook calls with it are denied from then on",
    response_model=RevokedHookToken,
    errors=(403, 409),
)
def revoke_hook_token(request: Request, principal: Principal, token_id: str) -> RevokedHookToken:
    return wiring.hook_tokens().revoke(principal, token_id)


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
def claude_code_pre_tool_use(request: Request, principal: None, body: PreToolUseInput) -> PreToolUseOutput:
    headers = request.headers
    token = headers.get("x-lighthouse-hook-token")
    authorization = f"Bearer {token}" if token else headers.get("authorization")
    if not authorization:
        raise Unauthenticated("no hook token: send 'Authorization: Bearer <hook token>' or X-Lighthouse-Hook-Token")
    caller = wiring.hook_tokens().verify_header(authorization)
    return wiring.validation_service().hook(caller, body)


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
def register_pipelines(request: Request, principal: Principal, body: RegisterPipelines) -> Registration:
    return wiring.pipeline_registry().register(principal, body.files)


@endpoints.route("/pipelines", "GET", summary="Registered pipelines, in routing order", response_model=PipelineList)
def list_pipelines(request: Request, principal: Principal) -> PipelineList:
    return wiring.pipeline_registry().pipelines()


@endpoints.route(
    "/pipelines/{name}",
    "GET",
    summary="A pipeline's latest version: its compiled definition and manifests",
    response_model=PipelineView,
)
def get_pipeline(request: Request, principal: Principal, name: str) -> PipelineView:
    return wiring.pipeline_registry().pipeline(name)


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
def create_task(request: Request, principal: Principal, body: CreateTask) -> TaskView:
    return wiring.task_service().create_task(principal, body)


@endpoints.route(
    "/tasks/{task_id}",
    "GET",
    objects="its creator, admins",
    summary="A task: status, stage outputs, tokens, cost, workspace changes, failure; ?wait=N for its end",
    response_model=TaskView,
    errors=(403,),
    query=(WAIT,),
)
def get_task(request: Request, principal: Principal, task_id: str, wait: int) -> TaskView:
    return wiring.task_service().task(principal, task_id, wait)


@endpoints.route(
    "/tasks/{task_id}/cancel",
    "POST",
    objects="its creator, admins",
    summary="Cancel a task that has not ended",
    response_model=TaskView,
    errors=(403, 409),
)
def cancel_task(request: Request, principal: Principal, task_id: str) -> TaskView:
    return wiring.task_service().cancel(principal, task_id)


@endpoints.route(
    "/tasks/{task_id}/resume",
    "POST",
    objects="its creator, admins",
    summary="Resume a FAILED task from the stage that failed (finished stages are not run again)",
    response_model=TaskView,
    errors=(403, 409),
)
def resume_task(request: Request, principal: Principal, task_id: str) -> TaskView:
    return wiring.task_service().resume(principal, task_id)


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
def remember(request: Request, principal: Principal, body: Remember) -> Remembered:
    return wiring.task_service().remember(principal, body)


@endpoints.route(
    "/connections",
    "GET",
    roles=ADMIN,
    summary="Named LLM connections pipelines may use (provider, URL, whether a key is set; never the key)",
    response_model=ConnectionList,
)
def list_connections(request: Request, principal: Principal) -> ConnectionList:
    return wiring.connections().list()


@endpoints.route(
    "/connections/{connection}",
    "PUT",
    roles=ADMIN,
    summary="Create or replace a named LLM connection: provider, the only base URL its key is sent to, the key",
    body=Connection,
    max_body=8 * KiB,
    response_model=ConnectionView,
)
def put_connection(request: Request, principal: Principal, connection: str, body: Connection) -> ConnectionView:
    return wiring.connections().put(connection, body)


@endpoints.route(
    "/connections/{connection}",
    "DELETE",
    roles=ADMIN,
    status=204,
    summary="Delete a named LLM connection (stages that name it then fail with a config error)",
)
def delete_connection(request: Request, principal: Principal, connection: str) -> Response:
    wiring.connections().delete(connection)
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
    request: Request, principal: Principal, store: str, scope: str, project: str | None, limit: int
) -> MemoryPage:
    return wiring.task_service().recall(principal, store, scope, project, limit)
