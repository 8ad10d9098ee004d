"""The HTTP API (API Gateway -> this Chalice app). Routes parse, authenticate and call one service."""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice, Request

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
from lighthouse.chalice_support import Endpoints, json_response
from lighthouse.config import get_settings
from lighthouse.errors import ValidationFailed
from lighthouse.health import run_checks
from lighthouse.http import parse_body

app = Chalice(app_name="lighthouse-api")
endpoints = Endpoints(
    app,
    authenticate=lambda: wiring.agent_service().authenticate,
    max_body_bytes=lambda: get_settings().max_body_bytes,
)
MAX_PAGE = 200


def _max_body() -> int:
    return get_settings().max_body_bytes


@endpoints.route("/health", "GET", public=True, summary="Report each dependency's health (200 or 503)")
def health(request: Request, principal: None) -> Any:
    healthy, report = run_checks(wiring.health_checks())
    return json_response(200 if healthy else 503, {"status": "ok" if healthy else "degraded", "dependencies": report})


@endpoints.route(
    "/sessions",
    "POST",
    public=True,
    status=201,
    summary="Exchange a signed proof of the agent secret for a bearer token",
    request_model=SessionRequest,
    response_model=SessionResponse,
)
def create_session(request: Request, principal: None) -> Any:
    return wiring.agent_service().create_session(parse_body(SessionRequest, request.raw_body, _max_body()))


@endpoints.route(
    "/agents/heartbeat",
    "POST",
    summary="Record that the calling agent is alive",
    request_model=HeartbeatRequest,
    response_model=HeartbeatResponse,
)
def heartbeat(request: Request, principal: Principal) -> HeartbeatResponse:
    return wiring.agent_service().heartbeat(principal, parse_body(HeartbeatRequest, request.raw_body, _max_body()))


@endpoints.route(
    "/agents",
    "GET",
    summary="List agents with presence (?limit=1..200&next_token=)",
    response_model=AgentPage,
)
def list_agents(request: Request, principal: Principal) -> AgentPage:
    query: dict[str, str] = dict(request.query_params or {})
    try:
        limit = int(query.get("limit", "50"))
    except ValueError as error:
        raise ValidationFailed("limit must be an integer", {"fields": [{"path": "limit"}]}) from error
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationFailed(f"limit must be between 1 and {MAX_PAGE}", {"fields": [{"path": "limit"}]})
    return wiring.agent_service().list(limit, query.get("next_token"))


@endpoints.route(
    "/agents/{agent_id}", "GET", summary="One agent's role, presence and metadata", response_model=AgentView
)
def get_agent(request: Request, principal: Principal, agent_id: str) -> AgentView:
    return wiring.agent_service().get(agent_id)
