"""`lighthouse mcp`: Lighthouse's MCP tools (`lighthouse.mcp_tools`) over stdio, talking to the HTTP API.

When the MCP client supports elicitation (a human at the keyboard), check_elicitations forwards each
pending question whose schema is a flat form as `elicitation/create` and sends the answer back.
With a WebSocket URL, the agent's notifications are pushed to the server (lighthouse_tools.push_client)
and the waiting tools (lighthouse_wait_for_elicitations, lighthouse_elicit_information with
wait_seconds) wait on them instead of long-polling; if the WebSocket is refused (the agent's
`websocket_push` flag is off) or down, they long-poll as before.
"""

from __future__ import annotations

import logging
import threading

from lighthouse.apiclient import LighthouseClient
from lighthouse.mcp_tools import build_server
from lighthouse.push.inbox import Inbox
from lighthouse_tools.push_client import PushClient, Refused

__all__ = ["build_server", "serve"]
logger = logging.getLogger("lighthouse.mcp")


def serve(api_url: str, agent_id: str, secret: str, websocket_url: str = "") -> None:
    """Serve the tools over stdio; while connected, the agent heartbeats and so counts as online."""
    client = LighthouseClient(api_url, agent_id, secret)
    stop = threading.Event()
    threading.Thread(target=client.keep_alive, args=(stop,), daemon=True, name="lighthouse-heartbeat").start()
    inbox: Inbox | None = None
    if websocket_url:
        push = PushClient(websocket_url, client.bearer_token, lambda envelope: inbox.put(envelope) if inbox else None,
                          {f"agent:{agent_id}": None})  # fmt: skip
        inbox = Inbox(live=push.subscribed)
        threading.Thread(target=_push, args=(push, inbox, stop), daemon=True, name="lighthouse-push").start()
    try:
        build_server(lambda: client, inbox=inbox).run(transport="stdio")
    finally:
        stop.set()


def _push(push: PushClient, inbox: Inbox, stop: threading.Event) -> None:
    try:
        push.run(stop)
    except Refused as error:
        inbox.refused.set()
        logger.warning("push unavailable, long-polling instead: %s", error)
