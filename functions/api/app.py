"""The HTTP API (API Gateway -> this Chalice app). Routes parse, authenticate and call one service."""

from __future__ import annotations

import time
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
)
from lighthouse.auth.tokens import Principal
from lighthouse.chalice_support import Endpoints, json_response, query_int, query_str
from lighthouse.config import get_settings
from lighthouse.elicitation.models import (
    MAX_WAIT_SECONDS,
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
from lighthouse.http import parse_body
from lighthouse.pipelines.models import (
    MAX_WAIT_SECONDS as MAX_TASK_WAIT,
)
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
    MAX_WAIT_SECONDS as MAX_VALIDATION_WAIT,
)
from lighthouse.validation.models import (
    AuditPage,
    HookToken,
    PolicyDocument,
    PolicyView,
    PreToolUseInput,
    PreToolUseOutput,
    ValidateRequest,
    ValidationResult,
    hook_output,
)

app = Chalice(app_name="lighthouse-api")
endpoints = Endpoints(
    app,
    authenticate=lambda: wiring.agent_service().authenticate,
    max_body_bytes=lambda: get_settings().max_body_bytes,
)
MAX_PAGE = 200
MAX_IDEMPOTENCY_KEY = 255


def _max_body() -> int:
    return get_settings().max_body_bytes


@endpoints.route("/health", "GET", public=True, summary="Report each dependency's health (200 or 503)")
def health(request: Request, principal: None) -> Any:
    healthy, report = run_checks(wiring.health_checks())
    return json_response(200 if healthy else 503, {"status": "ok" if healthy else "degraded", "dependencies": report})


# ---- agents ------------------------------------------------------------------------------------


@endpoints.route(
    "/sessions",
    "POST",
    public=True,
    status=201,
    summary="Exchange a signed proof of the agent secret for a bearer token",
    request_model=SessionRequest,
    response_model=SessionResponse,
    errors=(429,),
)
def create_session(request: Request, principal: None) -> Any:
    return wiring.agent_service().create_session(parse_body(SessionRequest, request.raw_body, _max_body()))


@endpoints.route(
    "/agents/heartbeat",
    "POST",
    summary="Record that the calling agent is alive",
    request_model=HeartbeatRequest,
    response_model=HeartbeatResponse,
    errors=(429,),
)
def heartbeat(request: Request, principal: Principal) -> HeartbeatResponse:
    return wiring.agent_service().heartbeat(principal, parse_body(HeartbeatRequest, request.raw_body, _max_body()))


@endpoints.route(
    "/agents",
    "GET",
    summary="List agents with presence (?limit=1..200&next_token=)",
    response_model=AgentPage,
    errors=(422,),
)
def list_agents(request: Request, principal: Principal) -> AgentPage:
    limit = query_int(request, "limit", 50, 1, MAX_PAGE)
    return wiring.agent_service().list(limit, query_str(request, "next_token"))


@endpoints.route(
    "/agents/{agent_id}", "GET", summary="One agent's role, presence and metadata", response_model=AgentView
)
def get_agent(request: Request, principal: Principal, agent_id: str) -> AgentView:
    return wiring.agent_service().get(agent_id)


# ---- elicitation -------------------------------------------------------------------------------


@endpoints.route(
    "/elicitation/create",
    "POST",
    status=201,
    summary="Ask another agent for data matching a JSON Schema, with a deadline (Idempotency-Key honoured)",
    request_model=CreateElicitation,
    response_model=CreatedElicitation,
    errors=(409, 429),
)
def create_elicitation(request: Request, principal: Principal) -> Any:
    body = parse_body(CreateElicitation, request.raw_body, _max_body())
    key = request.headers.get("idempotency-key")
    if key is None:
        return wiring.elicitation_service().create(principal, body)
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise MalformedRequest(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable characters")
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
    summary="Open elicitations addressed to the caller, urgent first then oldest (?limit=&next_token=&wait=N)",
    response_model=PendingPage,
    errors=(400, 422),
)
def pending_elicitations(request: Request, principal: Principal) -> PendingPage:
    limit = query_int(request, "limit", 50, 1, MAX_PAGE)
    wait = query_int(request, "wait", 0, 0, MAX_WAIT_SECONDS)
    return wiring.elicitation_service().pending(principal, limit, query_str(request, "next_token"), wait)


@endpoints.route(
    "/elicitation/respond",
    "POST",
    summary="Accept (with schema-valid data) or decline an elicitation addressed to the caller",
    request_model=RespondToElicitation,
    response_model=RespondResult,
    errors=(403, 409, 429),
)
def respond_to_elicitation(request: Request, principal: Principal) -> RespondResult:
    body = parse_body(RespondToElicitation, request.raw_body, _max_body())
    return wiring.elicitation_service().respond(principal, body)


@endpoints.route(
    "/elicitation/{elicitation_id}/cancel",
    "POST",
    summary="Cancel an open elicitation (requester only)",
    response_model=ElicitationView,
    errors=(403, 409),
)
def cancel_elicitation(request: Request, principal: Principal, elicitation_id: str) -> ElicitationView:
    return wiring.elicitation_service().cancel(principal, elicitation_id)


@endpoints.route(
    "/elicitation/status/{elicitation_id}",
    "GET",
    summary="Status, timestamps and (for the requester) the signed response; ?wait=N (<= 20 s) waits for an end",
    response_model=ElicitationView,
    errors=(403, 422),
)
def elicitation_status(request: Request, principal: Principal, elicitation_id: str) -> ElicitationView:
    wait = query_int(request, "wait", 0, 0, MAX_WAIT_SECONDS)
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
    request_model=ValidateRequest,
    response_model=ValidationResult,
    errors=(429,),
)
def validate(request: Request, principal: Principal) -> ValidationResult:
    body = parse_body(ValidateRequest, request.raw_body, _max_body())
    return wiring.validation_service().validate(principal, body)


@endpoints.route(
    "/validate/{request_id}",
    "GET",
    summary="A validation request's decision, votes and consensus; ?wait=N (<= 20 s) waits for the experts",
    response_model=ValidationResult,
    errors=(403, 404, 422),
)
def validation_result(request: Request, principal: Principal, request_id: str) -> ValidationResult:
    wait = query_int(request, "wait", 0, 0, MAX_VALIDATION_WAIT)
    return wiring.validation_service().result(principal, request_id, wait)


@endpoints.route(
    "/validation/audit",
    "GET",
    summary="An agent's validation requests and decisions, newest first (?agent= admins only; ?limit=&next_token=)",
    response_model=AuditPage,
    errors=(403, 422),
)
def validation_audit(request: Request, principal: Principal) -> AuditPage:
    limit = query_int(request, "limit", 50, 1, MAX_PAGE)
    return wiring.validation_service().audit(
        principal, query_str(request, "agent"), limit, query_str(request, "next_token")
    )


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
    summary="Replace the Cedar policies (admin); validated against the schema, recorded as a new version",
    request_model=PolicyDocument,
    response_model=PolicyView,
    errors=(403, 409),
)
def replace_validation_policies(request: Request, principal: Principal) -> PolicyView:
    body = parse_body(PolicyDocument, request.raw_body, _max_body())
    return wiring.validation_service().replace_policy(principal, body.policies)


@endpoints.route(
    "/hooks/token",
    "POST",
    status=201,
    summary="Issue the caller a long-lived hook token for Claude Code's hook headers",
    response_model=HookToken,
)
def issue_hook_token(request: Request, principal: Principal) -> HookToken:
    settings = get_settings()
    token, issued = wiring.hook_signer().issue(
        principal.agent_id, principal.role, time.time(), settings.hook_token_ttl_seconds
    )
    return HookToken(agent_id=issued.agent_id, hook_token=token, expires_at=issued.expires_at)


def _hook_denial(status: int, error: LighthouseError) -> Response:
    """Claude Code ignores a hook's non-2xx answer and runs the tool: every failure is a 200 deny."""
    reason = f"Lighthouse could not validate this call ({error.code}): {error.message}"
    if error.details.get("fields"):
        reason += " " + "; ".join(f"{f['path']}: {f['message']}" for f in error.details["fields"][:5])
    return json_response(
        200, hook_output("deny", reason), {"X-Lighthouse-Error": error.code, "X-Lighthouse-Status": str(status)}
    )


@endpoints.route(
    "/hooks/claude-code/pre-tool-use",
    "POST",
    public=True,
    summary="Claude Code PreToolUse hook (http): hook input in, hook output out; authenticated by a hook token",
    request_model=PreToolUseInput,
    response_model=PreToolUseOutput,
    error_view=_hook_denial,
)
def claude_code_pre_tool_use(request: Request, principal: None) -> PreToolUseOutput:
    headers = request.headers
    token = headers.get("x-lighthouse-hook-token")
    authorization = f"Bearer {token}" if token else headers.get("authorization")
    if not authorization:
        raise Unauthenticated("no hook token: send 'Authorization: Bearer <hook token>' or X-Lighthouse-Hook-Token")
    caller = wiring.hook_signer().verify_header(authorization, time.time())
    payload = parse_body(PreToolUseInput, request.raw_body, _max_body())
    return wiring.validation_service().hook(caller, payload)


# ---- pipelines ---------------------------------------------------------------------------------


@endpoints.route(
    "/pipelines",
    "POST",
    status=201,
    summary="Register a config directory (admin): validate every manifest, compile each workflow to a state machine",
    request_model=RegisterPipelines,
    response_model=Registration,
    errors=(403, 409),
)
def register_pipelines(request: Request, principal: Principal) -> Registration:
    body = parse_body(RegisterPipelines, request.raw_body, _max_body())
    return wiring.pipeline_service().register(principal, body.files)


@endpoints.route("/pipelines", "GET", summary="Registered pipelines, in routing order", response_model=PipelineList)
def list_pipelines(request: Request, principal: Principal) -> PipelineList:
    return wiring.pipeline_service().pipelines()


@endpoints.route(
    "/pipelines/{name}",
    "GET",
    summary="A pipeline's latest version: its compiled definition and manifests",
    response_model=PipelineView,
    errors=(404,),
)
def get_pipeline(request: Request, principal: Principal, name: str) -> PipelineView:
    return wiring.pipeline_service().pipeline(name)


@endpoints.route(
    "/tasks",
    "POST",
    status=201,
    summary="Start a task: the named pipeline, or the first whose match rules accept mode and tags",
    request_model=CreateTask,
    response_model=TaskView,
)
def create_task(request: Request, principal: Principal) -> TaskView:
    body = parse_body(CreateTask, request.raw_body, _max_body())
    return wiring.pipeline_service().create_task(principal, body)


@endpoints.route(
    "/tasks/{task_id}",
    "GET",
    summary="A task: status, stage outputs, tokens, cost, workspace changes, failure; ?wait=N (<= 20 s) for its end",
    response_model=TaskView,
    errors=(403, 404, 422),
)
def get_task(request: Request, principal: Principal, task_id: str) -> TaskView:
    wait = query_int(request, "wait", 0, 0, MAX_TASK_WAIT)
    return wiring.pipeline_service().task(principal, task_id, wait)


@endpoints.route(
    "/tasks/{task_id}/cancel",
    "POST",
    summary="Cancel a task that has not ended",
    response_model=TaskView,
    errors=(403, 404, 409),
)
def cancel_task(request: Request, principal: Principal, task_id: str) -> TaskView:
    return wiring.pipeline_service().cancel(principal, task_id)


@endpoints.route(
    "/tasks/{task_id}/resume",
    "POST",
    summary="Resume a FAILED task from the stage that failed (finished stages are not run again)",
    response_model=TaskView,
    errors=(403, 404, 409),
)
def resume_task(request: Request, principal: Principal, task_id: str) -> TaskView:
    return wiring.pipeline_service().resume(principal, task_id)


@endpoints.route(
    "/memory",
    "POST",
    status=201,
    summary="Add an item to a project's or the global memory store (agent stages read it through context profiles)",
    request_model=Remember,
    response_model=Remembered,
    errors=(403,),
)
def remember(request: Request, principal: Principal) -> Remembered:
    return wiring.pipeline_service().remember(principal, parse_body(Remember, request.raw_body, _max_body()))


@endpoints.route(
    "/memory",
    "GET",
    summary="The newest items of a memory store (?store=&scope=project|global&project=&limit=1..200)",
    response_model=MemoryPage,
    errors=(422,),
)
def recall(request: Request, principal: Principal) -> MemoryPage:
    store = query_str(request, "store")
    if not store:
        raise MalformedRequest("store is required")
    limit = query_int(request, "limit", 50, 1, MAX_PAGE)
    return wiring.pipeline_service().recall(
        store, query_str(request, "scope") or "project", query_str(request, "project"), limit
    )
