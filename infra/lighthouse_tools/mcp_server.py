"""`lighthouse mcp`: Lighthouse's MCP tools (`lighthouse.mcp_tools`) over stdio, talking to the HTTP API.

When the MCP client supports elicitation (a human at the keyboard), check_elicitations forwards each
pending question whose schema is a flat form as `elicitation/create` and sends the answer back.
"""

from __future__ import annotations

import threading

from lighthouse.apiclient import LighthouseClient
from lighthouse.mcp_tools import build_server

__all__ = ["build_server", "serve"]


def serve(api_url: str, agent_id: str, secret: str) -> None:
    """Serve the tools over stdio; while connected, the agent heartbeats and so counts as online."""
    client = LighthouseClient(api_url, agent_id, secret)
    stop = threading.Event()
    threading.Thread(target=client.keep_alive, args=(stop,), daemon=True, name="lighthouse-heartbeat").start()
    try:
        build_server(lambda: client).run(transport="stdio")
    finally:
        stop.set()
