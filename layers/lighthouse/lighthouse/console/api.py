"""The console's routes on the HTTP API (functions/api/app.py adds them): the browser session,
executions and the overview. Everything else the console shows comes from the API's own routes,
called with the session cookie and the CSRF header."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from chalice.app import Request, Response

from lighthouse.agents.models import SessionRequest
from lighthouse.api.endpoints import ADMIN, Endpoints, json_response
from lighthouse.api.params import Query, limit
from lighthouse.auth.tokens import Principal
from lighthouse.console import logic
from lighthouse.console.models import BrowserSession, ExecutionDetail, ExecutionPage, Overview, SignedOut
from lighthouse.console.service import CONSOLE_ROLES, ConsoleService

R = TypeVar("R")
KINDS = ("elicitation", "expert_round", "fleet_command", "rollout", "run", "pipeline_task", "presence", "other")
STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


def _secure(request: Request) -> bool:
    return logic.wants_secure_cookie(request.headers.get("host"), request.headers.get("x-forwarded-proto"))


def add_routes(endpoints: Endpoints[R], console_of: Callable[[R], ConsoleService]) -> None:
    """Declare the console's routes; `console_of(root)` is the service a request uses."""

    @endpoints.route(
        "/console/session", "POST", public=True, status=201, body=SessionRequest, max_body=2 * 1024,
        response_model=BrowserSession, errors=(401, 403, 429),
        summary="Sign a browser in (human and admin agents): the same signed proof as POST /sessions; the token "
                "is set as an HttpOnly SameSite=Strict cookie and the answer holds the CSRF value to echo",
    )  # fmt: skip
    def sign_in(api: R, request: Request, principal: None, body: SessionRequest) -> Response:
        source = str(((request.context or {}).get("identity") or {}).get("sourceIp") or "unknown")
        token, max_age, browser = console_of(api).sign_in(body, source)
        cookie = logic.session_cookie(token, max_age, _secure(request))
        return json_response(201, browser, {"Set-Cookie": cookie, "Cache-Control": "no-store"})

    @endpoints.route(
        "/console/session", "GET", roles=CONSOLE_ROLES, response_model=BrowserSession, csrf_exempt=True,
        summary="The signed-in browser's session (who, until when, the CSRF value); how a reloaded page resumes",
    )  # fmt: skip
    def session(api: R, request: Request, principal: Principal) -> Response:
        # The cookie's token, or a bearer header's (a script holding its token may ask as well).
        credentials = logic.authorization(request.headers, csrf_exempt=True) or ""
        token = credentials.partition(" ")[2]
        browser = console_of(api).browser_session(token, principal.agent_id, principal.role, principal.expires_at)
        return json_response(200, browser, {"Cache-Control": "no-store"})

    @endpoints.route(
        "/console/session", "DELETE", response_model=SignedOut,
        summary="Sign the browser out (the cookie is cleared)",
    )  # fmt: skip
    def sign_out(api: R, request: Request, principal: Principal) -> Response:
        return json_response(200, SignedOut(), {"Set-Cookie": logic.cleared_cookie(_secure(request))})

    @endpoints.route(
        "/executions", "GET", roles=ADMIN, response_model=ExecutionPage,
        summary="Every state machine's executions, newest first, each with the Lighthouse object it runs for",
        query=(
            Query("kind", "choice", "only executions of this kind", choices=KINDS),
            Query("status", "choice", "only executions in this status", choices=STATUSES),
            limit(50, 200),
        ),
    )  # fmt: skip
    def executions(
        api: R, request: Request, principal: Principal, kind: str | None, status: str | None, limit: int
    ) -> ExecutionPage:
        return console_of(api).executions(kind, status, limit)

    @endpoints.route(
        "/executions/{execution_arn}", "GET", roles=ADMIN, response_model=ExecutionDetail, errors=(404,),
        summary="An execution: its graph from the ASL definition with each state's status, input and output "
                "(credentials redacted), and its event history",
    )  # fmt: skip
    def execution(api: R, request: Request, principal: Principal, execution_arn: str) -> ExecutionDetail:
        return console_of(api).execution(execution_arn)

    @endpoints.route(
        "/overview", "GET", roles=ADMIN, response_model=Overview,
        summary="The figures the template's alarms watch, from the platform's own read models and queues",
    )  # fmt: skip
    def overview(api: R, request: Request, principal: Principal) -> Overview:
        return console_of(api).overview()
