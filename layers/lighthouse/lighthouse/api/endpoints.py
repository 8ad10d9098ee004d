"""Route registration for the Chalice app: every check a request passes before its view runs.

Order, for every route: body size -> path ids -> content type -> caller (authentication, role) ->
query parameters -> body (strict JSON, then the model) -> rate limit -> long-poll lease -> view.
Nothing is charged or stored until the caller and the whole request are known to be valid.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from chalice.app import Chalice, Request, Response
from pydantic import BaseModel

from lighthouse.api.guards import Guards
from lighthouse.api.params import PATH_PATTERNS, Query, check_path_param
from lighthouse.auth.tokens import Principal
from lighthouse.console.logic import authorization
from lighthouse.console.stats import RecentRequests
from lighthouse.errors import Forbidden, LighthouseError, MalformedRequest, PayloadTooLarge, UnsupportedMediaType
from lighthouse.http import error_body, error_response, parse_body
from lighthouse.logs import logger as logger_for

logger = logger_for("lighthouse-api")

View = Callable[..., Any]
R = TypeVar("R")
ROLES = ("agent", "expert", "human", "admin")
ADMIN = ("admin",)
DEFAULT_MAX_BODY = 16 * 1024
# Bodies are always read as strict JSON; curl sends form or text content types unless told otherwise.
JSON_CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/plain")


@dataclass(frozen=True)
class RouteDoc:
    """Everything a route promises; the wrapper enforces it and the OpenAPI document shows it."""

    path: str
    method: str
    summary: str
    public: bool
    roles: tuple[str, ...]
    status: int
    body: type[BaseModel] | None
    max_body: int
    response_model: type[BaseModel] | None
    errors: tuple[int, ...]
    query: tuple[Query, ...]
    long_poll: bool
    own_rate_limit: bool
    any_content_type: bool
    objects: str = ""  # the object-level rule on top of the role check, for the README's table
    content_type: str = "application/json"  # of a success (GET /metrics answers Prometheus text)
    csrf_exempt: bool = False  # GET /console/session only (see lighthouse.console.logic.authorization)

    @property
    def path_params(self) -> list[str]:
        # `{file_path+}` is API Gateway's greedy parameter: the rest of the path, slashes included.
        return [part.strip("{}").rstrip("+") for part in self.path.split("/") if part.startswith("{")]

    @property
    def statuses(self) -> list[int]:
        """Every status this route can answer with."""
        takes_input = bool(self.query or self.body)
        possible = {
            400: bool(self.path_params) or takes_input,
            422: takes_input,
            415: self.body is not None and not self.any_content_type,
            401: not self.public,
            429: not self.public,
            403: not self.public and self.roles != ROLES,
            404: bool(self.path_params),
        }
        codes = {self.status, 413, 503} | {code for code, applies in possible.items() if applies}
        return sorted(codes | set(self.errors))


@dataclass(frozen=True)
class _Route:
    doc: RouteDoc
    view: View
    error_view: Callable[[int, LighthouseError], Response] | None


@dataclass
class Endpoints(Generic[R]):
    """The API's routes, declared at import; `bind` serves them from a Chalice app with a root.

    A view is `view(root, request, principal, **path_params, **query, body=...)`: the root (what
    the function composed) is its first parameter, so what it depends on is in its signature.
    """

    guards: Callable[[R], Guards]
    docs: list[RouteDoc] = field(default_factory=list)
    recent: RecentRequests = field(default_factory=RecentRequests)  # the overview's API figures
    _routes: list[_Route] = field(default_factory=list)

    def route(
        self,
        path: str,
        method: str,
        *,
        summary: str,
        public: bool = False,
        roles: tuple[str, ...] = ROLES,
        status: int = 200,
        body: type[BaseModel] | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        response_model: type[BaseModel] | None = None,
        errors: tuple[int, ...] = (),
        query: tuple[Query, ...] = (),
        own_rate_limit: bool = False,
        error_view: Callable[[int, LighthouseError], Response] | None = None,
        objects: str = "",
        content_type: str = "application/json",
        csrf_exempt: bool = False,
    ) -> Callable[[View], View]:
        """Declare a route.

        `error_view` replaces the error mapping for callers that understand only their own answer
        format (a Claude Code hook treats any non-2xx as "no objection"); such a route accepts any
        content type, so that it can answer every request in that format.
        """
        doc = RouteDoc(
            path=path,
            method=method,
            summary=summary,
            public=public,
            roles=roles,
            status=status,
            body=body,
            max_body=max_body,
            response_model=response_model,
            errors=errors,
            query=query,
            long_poll=any(q.name == "wait" for q in query),
            own_rate_limit=own_rate_limit,
            any_content_type=error_view is not None,
            objects=objects,
            content_type=content_type,
            csrf_exempt=csrf_exempt,
        )
        unknown = set(doc.path_params) - set(PATH_PATTERNS)
        if unknown:
            raise ValueError(f"{path}: path parameters without a pattern: {sorted(unknown)}")
        self.docs.append(doc)

        def register(view: View) -> View:
            self._routes.append(_Route(doc, view, error_view))
            return view

        return register

    def bind(self, app: Chalice, root: Callable[[], R]) -> Chalice:
        """Serve every declared route from `app`, each view called with `root()`."""
        for route in self._routes:
            # Chalice would answer an unlisted content type with its own 415 body; ours is checked here.
            app.route(route.doc.path, methods=[route.doc.method], content_types=["*/*"])(
                self._handler(app, route, root)
            )
        return app

    def _handler(self, app: Chalice, route: _Route, root: Callable[[], R]) -> Callable[..., Response]:
        doc, error_view = route.doc, route.error_view

        @functools.wraps(route.view)
        def handle(**params: Any) -> Response:
            request: Request = app.current_request  # type: ignore[assignment]
            # Chalice passes only `{name}` parameters; a greedy `{name+}` arrives in uri_params.
            params = {**{k: v for k, v in (request.uri_params or {}).items() if k in doc.path_params}, **params}
            started = time.perf_counter()
            caller: list[str] = []  # who, once authenticated: every request's log line is its audit record
            try:
                response = self._serve(doc, route.view, root(), request, params, caller)
            except LighthouseError as error:
                code, payload, headers = error_response(error)
                response = error_view(code, error) if error_view else json_response(code, payload, headers)
            except Exception:
                logger.exception("unhandled error", extra={"path": doc.path, "method": doc.method})
                internal = LighthouseError("internal error; see the logs")
                response = (
                    error_view(500, internal)
                    if error_view
                    else json_response(500, error_body("INTERNAL_ERROR", internal.message))
                )
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.recent.record(response.status_code, elapsed_ms)
            logger.info(
                "request",
                extra={
                    "method": doc.method,
                    "route": doc.path,
                    "status": response.status_code,
                    "caller": caller[0] if caller else None,
                    "ms": round(elapsed_ms, 2),
                },
            )
            return response

        return handle

    def _serve(
        self, doc: RouteDoc, view: View, root: R, request: Request, params: dict[str, Any], caller: list[str]
    ) -> Response:
        guards = self.guards(root)
        max_body = min(doc.max_body, guards.max_body_ceiling)
        raw = _checked_request(doc, request, params, max_body)
        credentials = None if doc.public else authorization(request.headers, doc.csrf_exempt)
        principal = None if doc.public else guards.authenticate(credentials)
        if principal is not None:
            caller.append(principal.agent_id)
            _check_role(doc, principal)
        query: dict[str, str] = dict(request.query_params or {})
        arguments = {q.name: q.parse(query.get(q.name)) for q in doc.query}
        if doc.body is not None:
            arguments["body"] = parse_body(doc.body, raw, max_body)
        with _budget(doc, guards, principal, arguments.get("wait") or 0):
            result = view(root, request, principal, **params, **arguments)
        return result if isinstance(result, Response) else json_response(doc.status, result)


def _checked_request(doc: RouteDoc, request: Request, params: dict[str, Any], max_body: int) -> bytes:
    """The body, once its size, the path ids and the content type are acceptable."""
    body = request.raw_body or b""
    raw = body.encode() if isinstance(body, str) else body
    if len(raw) > max_body:
        raise PayloadTooLarge(
            f"request body is {len(raw)} bytes; the limit for {doc.method} {doc.path} is {max_body}",
            {"limit_bytes": max_body},
        )
    for name in doc.path_params:
        check_path_param(name, params[name])
    if doc.body is not None and not doc.any_content_type:
        _check_content_type(request.headers.get("content-type"))
    return raw


def _check_role(doc: RouteDoc, principal: Principal) -> None:
    if principal.role not in doc.roles:
        raise Forbidden(f"{doc.method} {doc.path} is for {' or '.join(doc.roles)} agents; you are {principal.role}")


def _budget(doc: RouteDoc, guards: Guards, principal: Principal | None, waiting: int) -> AbstractContextManager[None]:
    """Charge the request budget, or, for a long-poll, admit it to wait (a lease bounds it instead)."""
    if principal is None:
        return nullcontext()
    if waiting:
        return guards.waiting(principal, waiting)
    if not doc.own_rate_limit:
        guards.charge(principal)
    return nullcontext()


def _check_content_type(header: str | None) -> None:
    if not header:
        return
    media_type, *parameters = header.split(";")
    charsets = [p.strip().lower().removeprefix("charset=").strip('"') for p in parameters if "charset=" in p.lower()]
    charset = charsets[0] if charsets else "utf-8"
    if media_type.strip().lower() not in JSON_CONTENT_TYPES:
        raise UnsupportedMediaType(
            f"content type {media_type.strip()[:80]!r} is not accepted; send application/json",
            {"accepted": list(JSON_CONTENT_TYPES)},
        )
    if charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(f"charset {charset[:40]!r} is not accepted; bodies are UTF-8 JSON")


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="json", by_alias=True)
    return Response(
        body=json.dumps(body, allow_nan=False),
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def iter_routes(docs: list[RouteDoc]) -> Iterator[RouteDoc]:
    yield from sorted(docs, key=lambda doc: (doc.path, doc.method))


__all__ = ["ADMIN", "ROLES", "Endpoints", "Guards", "MalformedRequest", "RouteDoc", "json_response"]
