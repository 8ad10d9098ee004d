"""History and views routes of the HTTP API, declared on the API's `Endpoints` (functions/api/app.py).

File paths are API Gateway greedy parameters (`{file_path+}`), so `src/app/main.py` is written as
it is; stream ids are `<kind>:<id>` in URLs, since a '#' would end the URL's path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from email.utils import formatdate
from typing import Any, TypeVar

from chalice.app import Request, Response

from lighthouse.api.endpoints import Endpoints
from lighthouse.api.params import CURSOR, Query, limit
from lighthouse.auth.tokens import Principal
from lighthouse.history.logic import parse_instant
from lighthouse.history.models import (
    CaptureResult,
    FileAt,
    FileDiff,
    FileStats,
    FileTree,
    FileVersions,
    PostToolUseInput,
)
from lighthouse.history.service import HistoryService
from lighthouse.history.views import HistoryViews, TextView

R = TypeVar("R")
KiB = 1024
_INSTANT = r"^[0-9][0-9T:.+\-Z]{0,39}$"
AT = Query("at", "str", "the instant (ISO-8601 UTC or Unix seconds); default: now", pattern=_INSTANT, max_length=40)
PROJECT_QUERY = Query("project", "str", "the project (default: the base name of the payload's cwd)",
                      pattern=r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$", max_length=64)  # fmt: skip
MEMBERS = "members of the project, admins"


def text(view: TextView) -> Response:
    headers: dict[str, str | list[str]] = {
        "Content-Type": view.content_type,
        "Last-Modified": formatdate(view.modified_at, usegmt=True),
    }
    return Response(body=view.text, status_code=200, headers=headers)


def add_routes(
    endpoints: Endpoints[R],
    history_of: Callable[[R], HistoryService],
    views_of: Callable[[R], HistoryViews],
    hook_caller: Callable[[R, Mapping[str, str]], Principal],
    now: Callable[[R], float],
    charge: Callable[[R, Principal], None],
) -> None:
    """Declare every history route; `hook_caller(root, headers)` verifies the hook token they carry and
    `charge(root, caller)` takes a hook call from the caller's request budget (the route is public:
    the wrapper knows no caller to charge)."""

    def instant(api: R, raw: str | None) -> float:
        return parse_instant(raw) if raw else now(api)

    @endpoints.route(
        "/hooks/claude-code/post-tool-use", "POST", public=True, objects="a valid, unrevoked hook token",
        summary="Claude Code PostToolUse hook (http or the command hook): the files the tool changed, recorded",
        body=PostToolUseInput, max_body=5 * 1024 * KiB, response_model=CaptureResult, query=(PROJECT_QUERY,),
        errors=(401, 403, 429),
    )  # fmt: skip
    def post_tool_use(
        api: R, request: Request, principal: None, body: PostToolUseInput, project: str | None
    ) -> CaptureResult:
        caller = hook_caller(api, request.headers)
        charge(api, caller)
        return history_of(api).capture(caller, project, body)

    @endpoints.route(
        "/views/{project}/current/{file_path+}", "GET", objects=MEMBERS, content_type="text/plain", errors=(403, 422),
        summary="The file's latest content, annotated: header, AST anchors, security findings",
    )  # fmt: skip
    def current_view(api: R, request: Request, principal: Principal, project: str, file_path: str) -> Response:
        return text(views_of(api).current(principal, project, file_path))

    @endpoints.route(
        "/views/{project}/history/{instant}/{file_path+}", "GET", objects=MEMBERS, content_type="text/plain",
        errors=(403, 422),
        summary="The file as it was at an instant (ISO-8601 or Unix seconds), with a header of its history",
    )  # fmt: skip
    def history_view(
        api: R, request: Request, principal: Principal, project: str, instant: str, file_path: str
    ) -> Response:
        return text(views_of(api).history(principal, project, parse_instant(instant), file_path))

    @endpoints.route(
        "/views/{project}/streams/{stream_id}", "GET", objects="members of the project who take part in the stream",
        errors=(403, 422),
        summary="An event stream's state at an instant (`<kind>:<id>`, e.g. elicitation:<id>), as JSON",
        query=(AT,), content_type="application/json",
    )  # fmt: skip
    def stream_view(
        api: R, request: Request, principal: Principal, project: str, stream_id: str, at: str | None
    ) -> Response:
        history_of(api).require_member(principal, project)
        stream = stream_id.replace(":", "#", 1)
        return text(views_of(api).stream(principal, stream, instant(api, at)))

    @endpoints.route(
        "/views/context/{agent_id}", "GET", objects="the agent itself, admins", content_type="application/json",
        errors=(403,),
        summary="What an agent is involved in now: open elicitations, recent gate decisions, running tasks and runs",
    )  # fmt: skip
    def context_view(api: R, request: Request, principal: Principal, agent_id: str) -> Response:
        return text(views_of(api).context(principal, agent_id))

    @endpoints.route(
        "/views/{project}/shadow/{file_path+}", "GET", objects=MEMBERS, content_type="text/plain", errors=(403, 422),
        summary="Experts' suggestions (modify votes) about a file, or `commands` for Bash, newest first",
    )  # fmt: skip
    def shadow_view(api: R, request: Request, principal: Principal, project: str, file_path: str) -> Response:
        return text(views_of(api).shadow(principal, project, file_path))

    @endpoints.route(
        "/history/{project}/tree", "GET", objects=MEMBERS, response_model=FileTree, query=(AT,), errors=(403, 422),
        summary="The project's files (now, or at an instant): size, sha256, version, last change",
    )  # fmt: skip
    def tree(api: R, request: Request, principal: Principal, project: str, at: str | None) -> FileTree:
        return history_of(api).tree(principal, project, parse_instant(at) if at else None)

    @endpoints.route(
        "/history/{project}/versions/{file_path+}", "GET", objects=MEMBERS, response_model=FileVersions,
        errors=(403, 422),
        query=(limit(100, 1000), CURSOR),
        summary="A file's versions, oldest first: type, agent, instant, sha256, lines",
    )  # fmt: skip
    def versions(
        api: R,
        request: Request,
        principal: Principal,
        project: str,
        file_path: str,
        limit: int,
        next_token: str | None,
    ) -> FileVersions:
        return history_of(api).versions(principal, project, file_path, limit, next_token or None)

    @endpoints.route(
        "/history/{project}/at/{instant}/{file_path+}", "GET", objects=MEMBERS, response_model=FileAt,
        errors=(403, 422),
        summary="The exact file at an instant (verified against its recorded sha256), as JSON",
    )  # fmt: skip
    def file_at(api: R, request: Request, principal: Principal, project: str, instant: str, file_path: str) -> FileAt:
        return history_of(api).file_at(principal, project, file_path, parse_instant(instant))

    @endpoints.route(
        "/history/{project}/diff/{file_path+}", "GET", objects=MEMBERS, response_model=FileDiff,
        query=(Query("from", "str", "the earlier instant", pattern=_INSTANT, max_length=40, required=True), AT),
        summary="A unified diff of the file between two instants (`to` is ?at=, default now)", errors=(403, 422),
    )  # fmt: skip
    def diff(api: R, request: Request, principal: Principal, project: str, file_path: str, **query: Any) -> FileDiff:
        start = parse_instant(query["from"])
        return history_of(api).diff(principal, project, file_path, start, instant(api, query.get("at")))

    @endpoints.route(
        "/history/{project}/stats/{file_path+}", "GET", objects=MEMBERS, response_model=FileStats, errors=(403, 422),
        summary="A file's contributors and change statistics",
    )  # fmt: skip
    def stats(api: R, request: Request, principal: Principal, project: str, file_path: str) -> FileStats:
        return history_of(api).stats(principal, project, file_path)
