"""The flags routes of the HTTP API, declared on the API's `Endpoints` (functions/api/app.py adds them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from chalice.app import Request

from lighthouse.agents.models import AGENT_ID_PATTERN
from lighthouse.api.endpoints import ADMIN, ROLES, Endpoints
from lighthouse.api.params import Query
from lighthouse.auth.tokens import Principal
from lighthouse.errors import Forbidden
from lighthouse.flags.models import FlagEvaluation, FlagsView, PutFlags, Rollout
from lighthouse.flags.service import FlagsService

R = TypeVar("R")
KiB = 1024


def add_routes(endpoints: Endpoints[R], flags_of: Callable[[R], FlagsService]) -> None:
    """Declare every flags route; `flags_of(root)` is the service a request uses."""

    @endpoints.route(
        "/flags", "GET", summary="The feature-flags document, its version and the flags Lighthouse declares",
        roles=ADMIN, response_model=FlagsView,
    )  # fmt: skip
    def get_flags(api: R, request: Request, principal: Principal) -> FlagsView:
        return flags_of(api).view()

    @endpoints.route(
        "/flags", "PUT", summary="Replace the feature-flags document (schemas/flags.json); recorded as FLAGS_CHANGED",
        roles=ADMIN, body=PutFlags, max_body=64 * KiB, response_model=FlagsView, errors=(409, 422, 503),
    )  # fmt: skip
    def put_flags(api: R, request: Request, principal: Principal, body: PutFlags) -> FlagsView:
        return flags_of(api).put(principal, body)

    @endpoints.route(
        "/flags/{flag}/rollout", "POST", summary="Turn a flag on for a share of agents (0-100 %, by agent id)",
        roles=ADMIN, body=Rollout, response_model=FlagsView, errors=(404, 409, 422, 503),
    )  # fmt: skip
    def rollout(api: R, request: Request, principal: Principal, flag: str, body: Rollout) -> FlagsView:
        return flags_of(api).rollout(principal, flag, body.percent)

    @endpoints.route(
        "/flags/{flag}/evaluation", "GET", summary="A flag's value for the caller (admins: for any agent and role)",
        response_model=FlagEvaluation, errors=(403,),
        query=(
            Query("agent_id", "str", "the agent to evaluate for (admins only)", pattern=AGENT_ID_PATTERN,
                  max_length=128),
            Query("role", "choice", "the role to evaluate with (admins only)", choices=ROLES),
        ),
    )  # fmt: skip
    def evaluate(
        api: R, request: Request, principal: Principal, flag: str, agent_id: str | None, role: str | None
    ) -> FlagEvaluation:
        if (agent_id or role) and principal.role != "admin":
            raise Forbidden("only admins may evaluate a flag for another agent or role")
        return flags_of(api).evaluation(flag, agent_id or principal.agent_id, role or principal.role)
