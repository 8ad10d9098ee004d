"""`lighthouse mcp`: Lighthouse elicitation as MCP tools over stdio, talking to the HTTP API.

Tools: lighthouse_elicit_information, lighthouse_check_elicitations, lighthouse_respond_to_elicitation.
When the MCP client supports elicitation (a human at the keyboard), check_elicitations forwards each
pending question whose schema is a flat form as `elicitation/create` and sends the answer back:
accept -> accept with the form's content, decline -> decline, cancel -> left pending for later.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer

from lighthouse.elicitation.schemas import is_flat_form
from lighthouse.elicitation.signing import verify_response
from lighthouse_tools.client import ApiError, LighthouseClient

MAX_WAIT_PER_CALL = 20


def build_server(client: LighthouseClient) -> MCPServer:
    server: MCPServer = MCPServer(
        name="lighthouse",
        instructions="Ask other agents or humans for structured answers, and answer what they ask you.",
    )
    response_keys: dict[str, str] = {}

    async def call(function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await anyio.to_thread.run_sync(lambda: function(*args, **kwargs))
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
            client.elicit, to_agent, message, schema, timeout_seconds=timeout_seconds, priority=priority
        )
        if "error" in created:
            return dict(created)
        elicitation_id = created["elicitation_id"]
        response_keys[elicitation_id] = created["response_key"]
        if wait_seconds <= 0:
            return {"elicitation_id": elicitation_id, "status": "pending", "expires_at": created["expires_at"]}
        deadline = time.monotonic() + wait_seconds
        status: dict[str, Any] = {"status": "pending"}
        while status.get("status") == "pending" and time.monotonic() < deadline:
            chunk = max(1, min(MAX_WAIT_PER_CALL, int(deadline - time.monotonic())))
            status = await call(client.status, elicitation_id, chunk)
            if "error" in status:
                return status
        return _with_verification(status, response_keys.get(elicitation_id))

    @server.tool()
    async def lighthouse_check_elicitations(ctx: Context, limit: int = 20, ask_human: bool = True) -> dict[str, Any]:
        """List the questions waiting for you. If your MCP client can show forms, each question with a
        simple form schema is put to you directly and your answer is sent back."""
        pending = await call(client.pending, limit)
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
                result = await session.elicit_form(
                    f"{item['from_agent']} asks: {item['message']}", item["schema"], ctx.request_id
                )
                if result.action == "accept":
                    sent = await call(client.respond, item["elicitation_id"], "accept", result.content or {})
                    outcome["answered"] = "accepted" if "error" not in sent else sent
                elif result.action == "decline":
                    sent = await call(client.respond, item["elicitation_id"], "decline")
                    outcome["answered"] = "declined" if "error" not in sent else sent
                else:
                    outcome["answered"] = "left pending (the form was dismissed)"
            outcomes.append(outcome)
        return {"elicitations": outcomes}

    @server.tool()
    async def lighthouse_respond_to_elicitation(
        elicitation_id: str, action: Literal["accept", "decline"], data: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Answer a question addressed to you: accept with data matching its schema, or decline."""
        return dict(await call(client.respond, elicitation_id, action, data))

    return server


def _with_verification(status: dict[str, Any], key: str | None) -> dict[str, Any]:
    response = status.get("response")
    if response and key:
        status = {**status, "signature_verified": verify_response(key, response, status["elicitation_id"])}
    return status


def serve(api_url: str, agent_id: str, secret: str) -> None:
    """Serve the tools over stdio; while connected, the agent heartbeats and so counts as online."""
    client = LighthouseClient(api_url, agent_id, secret)
    stop = threading.Event()
    threading.Thread(target=client.keep_alive, args=(stop,), daemon=True, name="lighthouse-heartbeat").start()
    try:
        build_server(client).run(transport="stdio")
    finally:
        stop.set()
