"""Route registration for the Chalice app: body cap, authentication and error mapping in one place."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from chalice.app import Chalice, Request, Response
from pydantic import BaseModel

from lighthouse.auth.tokens import Principal
from lighthouse.errors import LighthouseError, PayloadTooLarge, ValidationFailed
from lighthouse.http import error_body, error_response

logger = Logger(service="lighthouse-api")

View = Callable[..., Any]
Authenticator = Callable[[str | None], Principal]
# Bodies are always parsed as JSON; clients such as curl send form or text content types by default.
ACCEPTED_CONTENT_TYPES = ["application/json", "application/x-www-form-urlencoded", "text/plain"]


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="json", by_alias=True)
    return Response(
        body=json.dumps(body),
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


@dataclass(frozen=True)
class RouteDoc:
    """What the OpenAPI document says about a route; recorded where the route is declared."""

    path: str
    method: str
    summary: str
    public: bool
    status: int
    request_model: type[BaseModel] | None
    response_model: type[BaseModel] | None
    errors: tuple[int, ...]


def query_str(request: Request, name: str) -> str | None:
    params: dict[str, str] = dict(request.query_params or {})
    return params.get(name)


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high], or a 422 naming it."""
    raw = query_str(request, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ValidationFailed(
            f"{name} must be an integer between {low} and {high}",
            {"fields": [{"path": name, "message": "out of range"}]},
        )
    return value


class Endpoints:
    """Registers views on a Chalice app; every view gets the request and the caller's principal."""

    def __init__(self, app: Chalice, authenticate: Callable[[], Authenticator], max_body_bytes: Callable[[], int]):
        self._app = app
        self._authenticate = authenticate
        self._max_body_bytes = max_body_bytes
        self.docs: list[RouteDoc] = []

    def route(
        self,
        path: str,
        method: str,
        *,
        summary: str,
        public: bool = False,
        status: int = 200,
        request_model: type[BaseModel] | None = None,
        response_model: type[BaseModel] | None = None,
        errors: tuple[int, ...] = (),
        error_view: Callable[[int, LighthouseError], Response] | None = None,
    ) -> Callable[[View], View]:
        """Register a view; `errors` documents statuses beyond those every route of its kind has.

        `error_view` replaces the error mapping for routes whose callers only understand their own
        answer format (a Claude Code hook treats any non-2xx as "no objection").
        """
        self.docs.append(RouteDoc(path, method, summary, public, status, request_model, response_model, errors))

        def register(view: View) -> View:
            @functools.wraps(view)
            def handle(**params: Any) -> Response:
                request: Request = self._app.current_request  # type: ignore[assignment]
                started = time.perf_counter()
                try:
                    body = request.raw_body or b""
                    limit = self._max_body_bytes()
                    if len(body) > limit:
                        raise PayloadTooLarge(
                            f"request body is {len(body)} bytes; the limit is {limit}", {"limit_bytes": limit}
                        )
                    principal = None if public else self._authenticate()(request.headers.get("authorization"))
                    result = view(request, principal, **params)
                    response = result if isinstance(result, Response) else json_response(status, result)
                except LighthouseError as error:
                    code, payload, headers = error_response(error)
                    response = error_view(code, error) if error_view else json_response(code, payload, headers)
                except Exception:
                    logger.exception("unhandled error", extra={"path": path, "method": method})
                    internal = LighthouseError("internal error; see the logs")
                    response = (
                        error_view(500, internal)
                        if error_view
                        else json_response(500, error_body("INTERNAL_ERROR", internal.message))
                    )
                logger.info(
                    "request",
                    extra={
                        "method": method,
                        "route": path,
                        "status": response.status_code,
                        "ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )
                return response

            self._app.route(path, methods=[method], content_types=ACCEPTED_CONTENT_TYPES)(handle)
            return view

        return register
