"""Lighthouse as MCP tools, talking to the HTTP API: one set of tools, served over stdio by
`lighthouse mcp` (with the agent's own secret) and over Streamable HTTP by the MCP function (with
each caller's bearer token, the API function invoked directly).

Elicitation: lighthouse_elicit_information, lighthouse_check_elicitations, lighthouse_respond_to_elicitation.
Runs: launch_run, list_runs, get_run, get_run_report, list_directives, get_directive, get_allowlist,
set_allowlist (declared input and output schemas; an API refusal is a tool error with its message).
When the MCP client supports elicitation (a human at the keyboard), check_elicitations forwards each
pending question whose schema is a flat form as `elicitation/create` and sends the answer back:
accept -> accept with the form's content, decline -> decline, cancel -> left pending for later.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import quote, urlencode

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from lighthouse.apiclient import ApiError, LighthouseClient
from lighthouse.elicitation.schemas import is_flat_form
from lighthouse.elicitation.signing import verify_response
from lighthouse.push.inbox import Inbox
from lighthouse.runs.models import (
    Allowlist,
    AllowlistEntry,
    Directive,
    DirectiveList,
    RunAccepted,
    RunPage,
    RunReport,
    RunView,
)

MAX_WAIT_PER_CALL = 20
CONNECT_GRACE = 15.0  # seconds a waiting tool gives the first push connect before long-polling
SETTLED = ("elicitation.answered", "elicitation.expired", "elicitation.cancelled")


def _asks_me(envelope: dict[str, Any]) -> bool:
    return envelope.get("type") in ("elicitation.requested", "validation.vote_requested")


def build_server(client_of: Callable[[], LighthouseClient], inbox: Inbox | None = None, **options: Any) -> MCPServer:
    """`client_of()` is the client a tool call acts with (the caller's, over HTTP); `inbox` holds
    what the WebSocket API pushes to it (`lighthouse mcp`), which the waiting tools use while live."""
    server: MCPServer = MCPServer(
        name="lighthouse",
        instructions="Ask other agents or humans for structured answers, and answer what they ask you; "
        "launch and read runs of Lighthouse's jobs (log triage, GPU report, service map).",
        **options,
    )
    response_keys: dict[str, str] = {}

    async def call(function: Callable[[LighthouseClient], Any]) -> Any:
        client = client_of()
        try:
            return await anyio.to_thread.run_sync(lambda: function(client))
        except ApiError as error:
            return {"error": {"status": error.status, "code": error.code, "message": str(error)}}

    @server.tool()
    async def lighthouse_elicit_information(
        to_agent: str,
        message: str,
        schema: dict[str, Any],
        timeout_seconds: int = 300,
        priority: Literal["normal", "urgent"] = "normal",
        wait_seconds: int = 0,
    ) -> dict[str, Any]:
        """Ask another agent (or a human) for data matching a JSON Schema. With wait_seconds > 0, wait
        up to that long for the answer and return it with its verified signature."""
        created = await call(
            lambda c: c.elicit(to_agent, message, schema, timeout_seconds=timeout_seconds, priority=priority)
        )
        if "error" in created:
            return dict(created)
        elicitation_id = created["elicitation_id"]
        response_keys[elicitation_id] = created["response_key"]
        if wait_seconds <= 0:
            return {"elicitation_id": elicitation_id, "status": "pending", "expires_at": created["expires_at"]}
        deadline = time.monotonic() + wait_seconds
        status: dict[str, Any] = {"status": "pending"}
        if inbox is not None and await anyio.to_thread.run_sync(inbox.ready, CONNECT_GRACE):
            # Pushed: the answer (or the expiry) arrives on the WebSocket; one read then fetches it.
            def settled(envelope: dict[str, Any]) -> bool:
                return envelope.get("id") == elicitation_id and envelope.get("type") in SETTLED

            await anyio.to_thread.run_sync(lambda: inbox.take(settled, wait_seconds))
            status = await call(functools.partial(_status, elicitation_id=elicitation_id, wait=0))
            if "error" in status:
                return status
        while status.get("status") == "pending" and time.monotonic() < deadline:
            chunk = max(1, min(MAX_WAIT_PER_CALL, int(deadline - time.monotonic())))
            status = await call(functools.partial(_status, elicitation_id=elicitation_id, wait=chunk))
            if "error" in status:
                return status
        return _with_verification(status, response_keys.get(elicitation_id))

    async def answer_pending(ctx: Context, limit: int, ask_human: bool) -> dict[str, Any]:
        pending = await call(lambda c: c.pending(limit))
        if isinstance(pending, dict) and "error" in pending:
            return pending
        session = ctx.request_context.session
        capabilities = session.client_params.capabilities if session.client_params else None
        can_ask = ask_human and capabilities is not None and capabilities.elicitation is not None
        outcomes: list[dict[str, Any]] = []
        for item in pending:
            outcome: dict[str, Any] = {"elicitation_id": item["elicitation_id"], "from_agent": item["from_agent"],
                                       "message": item["message"], "schema": item["schema"],
                                       "priority": item["priority"], "expires_at": item["expires_at"]}  # fmt: skip
            if can_ask and is_flat_form(item["schema"]):
                outcome["answered"] = await ask_person(ctx, item)
            outcomes.append(outcome)
        return {"elicitations": outcomes}

    async def ask_person(ctx: Context, item: dict[str, Any]) -> Any:
        """Put one question to the human at the MCP client (`elicitation/create`) and send the answer."""
        session = ctx.request_context.session
        result = await session.elicit_form(
            f"{item['from_agent']} asks: {item['message']}", item["schema"], ctx.request_id
        )
        if result.action not in ("accept", "decline"):
            return "left pending (the form was dismissed)"
        data = (result.content or {}) if result.action == "accept" else None
        answer = functools.partial(_respond, elicitation_id=item["elicitation_id"], action=result.action, data=data)
        sent = await call(answer)
        return ("accepted" if result.action == "accept" else "declined") if "error" not in sent else sent

    @server.tool()
    async def lighthouse_check_elicitations(ctx: Context, limit: int = 20, ask_human: bool = True) -> dict[str, Any]:
        """List the questions waiting for you. If your MCP client can show forms, each question with a
        simple form schema is put to you directly and your answer is sent back."""
        return await answer_pending(ctx, limit, ask_human)

    @server.tool()
    async def lighthouse_wait_for_elicitations(
        ctx: Context, wait_seconds: int = 30, limit: int = 20, ask_human: bool = True
    ) -> dict[str, Any]:
        """Wait up to wait_seconds for questions addressed to you, then handle them as
        lighthouse_check_elicitations does. Questions are pushed over Lighthouse's WebSocket API when it
        is available (no polling; each arrival is also sent to you as an MCP log notification);
        otherwise the API is long-polled."""
        client = client_of()
        polls_before = client.long_polls
        live = inbox is not None and await anyio.to_thread.run_sync(inbox.ready, CONNECT_GRACE)
        delivery = "websocket" if live else "long-poll"
        first = await answer_pending(ctx, limit, ask_human)
        if "error" in first or first["elicitations"]:
            return {**first, "delivery": delivery, "long_polls": client.long_polls - polls_before}
        if inbox is not None and delivery == "websocket":
            pushed = await anyio.to_thread.run_sync(lambda: inbox.take(_asks_me, max(0, wait_seconds)))
            if pushed is not None:
                await ctx.info(
                    f"lighthouse: {pushed['type']} {pushed['id']} from {pushed['summary'].get('from_agent')}"
                )
        else:
            await call(lambda c: c.pending(limit, max(1, min(MAX_WAIT_PER_CALL, wait_seconds))))
        result = await answer_pending(ctx, limit, ask_human)
        return {**result, "delivery": delivery, "long_polls": client.long_polls - polls_before}

    @server.tool()
    async def lighthouse_respond_to_elicitation(
        elicitation_id: str, action: Literal["accept", "decline"], data: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Answer a question addressed to you: accept with data matching its schema, or decline."""
        return dict(await call(lambda c: c.respond(elicitation_id, action, data)))

    add_run_tools(server, client_of)
    return server


def _status(client: LighthouseClient, elicitation_id: str, wait: int) -> dict[str, Any]:
    return client.status(elicitation_id, wait)


def _respond(client: LighthouseClient, elicitation_id: str, action: str, data: Any) -> dict[str, Any]:
    return client.respond(elicitation_id, action, data)


def _with_verification(status: dict[str, Any], key: str | None) -> dict[str, Any]:
    response = status.get("response")
    if response and key:
        status = {**status, "signature_verified": verify_response(key, response, status["elicitation_id"])}
    return status


def add_run_tools(server: MCPServer, client_of: Callable[[], LighthouseClient]) -> None:
    """The runs tools. Each returns the API's answer as its declared model; a refusal (a 4xx or 5xx)
    is raised as a tool error carrying the API's message."""

    async def api(method: str, path: str, body: Any = None) -> Any:
        client = client_of()
        try:
            return await anyio.to_thread.run_sync(lambda: client.request(method, path, body))
        except ApiError as error:
            raise ToolError(str(error)) from error

    @server.tool()
    async def launch_run(
        job: str,
        directive: str = "default",
        parameters: dict[str, Any] | None = None,
        targets: list[str] | None = None,
    ) -> RunAccepted:
        """Launch a run of a job template (log_triage, gpu_report, service_map) under a directive.
        targets: container ids (log_triage) or agent ids; none means every allowed one."""
        body = {"job": job, "directive": directive, "parameters": parameters or {}, "targets": targets or []}
        return RunAccepted.model_validate(await api("POST", "/runs", body))

    @server.tool()
    async def list_runs(job: str | None = None, status: str | None = None, limit: int = 20) -> RunPage:
        """Runs, newest first; optionally of one job and/or with one status."""
        query = urlencode({k: v for k, v in {"job": job, "status": status, "limit": limit}.items() if v})
        return RunPage.model_validate(await api("GET", f"/runs?{query}"))

    @server.tool()
    async def get_run(run_id: str) -> RunView:
        """A run: its status, its jobs and their progress, the directive it was launched under."""
        return RunView.model_validate(await api("GET", f"/runs/{quote(run_id, safe='')}"))

    @server.tool()
    async def get_run_report(run_id: str) -> RunReport:
        """A run's report: its jobs, artifacts with download URLs, tokens, cost and duration."""
        return RunReport.model_validate(await api("GET", f"/runs/{quote(run_id, safe='')}/report"))

    @server.tool()
    async def list_directives() -> DirectiveList:
        """The directives runs can be launched under (D1 built in, D2/D3 configured, D4 custom)."""
        return DirectiveList.model_validate(await api("GET", "/directives"))

    @server.tool()
    async def get_directive(directive_id: str, version: int | None = None) -> Directive:
        """One directive: its goals, constraints and output style (the latest version unless given)."""
        suffix = f"?version={version}" if version else ""
        return Directive.model_validate(await api("GET", f"/directives/{quote(directive_id, safe='')}{suffix}"))

    @server.tool()
    async def get_allowlist() -> Allowlist:
        """The containers jobs may touch."""
        return Allowlist.model_validate(await api("GET", "/allowlist"))

    @server.tool()
    async def set_allowlist(entries: list[AllowlistEntry]) -> Allowlist:
        """Replace the container allowlist (admins only): each entry {container_id, enabled, tags, description}."""
        body = {"entries": [entry.model_dump() for entry in entries]}
        return Allowlist.model_validate(await api("PUT", "/allowlist", body))


# The API routes the tools call: the MCP function's transport maps each request to its route.
ROUTES = (
    "/elicitation/create",
    "/elicitation/pending",
    "/elicitation/respond",
    "/elicitation/status/{elicitation_id}",
    "/agents/heartbeat",
    "/runs",
    "/runs/{run_id}",
    "/runs/{run_id}/report",
    "/directives",
    "/directives/{directive_id}",
    "/allowlist",
)
