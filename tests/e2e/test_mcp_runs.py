"""The runs tools through the official MCP SDK client, over Streamable HTTP (the MCP function at its
function URL, bearer = a session token) and over stdio (`lighthouse mcp`), against `lighthouse up`."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.conftest import LIGHTHOUSE, Platform, open_session

pytestmark = pytest.mark.e2e

RUN_TOOLS = {
    "launch_run", "list_runs", "get_run", "get_run_report", "list_directives", "get_directive", "get_allowlist",
    "set_allowlist",
}  # fmt: skip
ELICITATION_TOOLS = {
    "lighthouse_elicit_information",
    "lighthouse_check_elicitations",
    "lighthouse_respond_to_elicitation",
}


def operator(platform: Platform) -> tuple[str, str]:
    credential = json.loads(platform.state_file.with_name("operator.json").read_text())
    return str(credential["agent_id"]), str(credential["secret"])


@asynccontextmanager
async def over_http(platform: Platform, token: str) -> AsyncIterator[ClientSession]:
    url = json.loads(platform.state_file.read_text())["mcp_url"]
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


@asynccontextmanager
async def over_stdio(platform: Platform, agent_id: str, secret: str) -> AsyncIterator[ClientSession]:
    parameters = StdioServerParameters(
        command=LIGHTHOUSE,
        args=["--state-file", str(platform.state_file), "mcp", "--agent-id", agent_id],
        env={**os.environ, "LIGHTHOUSE_AGENT_SECRET": secret},
    )
    async with stdio_client(parameters) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def call(session: ClientSession, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result
    assert result.structured_content is not None
    return dict(result.structured_content)


async def the_eight_tools(session: ClientSession) -> None:
    tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert set(tools) >= RUN_TOOLS | ELICITATION_TOOLS
    assert tools["launch_run"].output_schema is not None
    assert "run_id" in json.dumps(tools["launch_run"].output_schema)
    assert "job" in tools["launch_run"].input_schema["required"]
    allowlist = await call(session, "set_allowlist", {"entries": [{"container_id": "web01", "enabled": True}]})
    assert [e["container_id"] for e in allowlist["entries"]] == ["web01"]
    assert (await call(session, "get_allowlist", {}))["entries"][0]["container_id"] == "web01"
    directives = await call(session, "list_directives", {})
    assert "default" in {d["directive_id"] for d in directives["directives"]}
    assert (await call(session, "get_directive", {"directive_id": "default"}))["type"] == "D1"
    launched = await call(session, "launch_run", {"job": "service_map", "directive": "default"})
    run_id = launched["run_id"]
    for _ in range(300):
        run = await call(session, "get_run", {"run_id": run_id})
        if run["status"] in ("success", "failed", "cancelled"):
            break
        await anyio.sleep(0.2)
    # No agent reports an inventory on this platform: the job fails, saying why.
    assert run["status"] == "failed"
    assert "no agent has reported an inventory" in run["jobs"][0]["error"]
    report = await call(session, "get_run_report", {"run_id": run_id})
    assert report["run_id"] == run_id
    assert report["status"] == "failed"
    assert run_id in {r["run_id"] for r in (await call(session, "list_runs", {"job": "service_map"}))["runs"]}
    refused = await session.call_tool("get_run", {"run_id": "run-0000000000000000"})
    assert refused.is_error
    assert "no run" in json.dumps(refused.model_dump(mode="json")["content"])
    bad = await session.call_tool("launch_run", {"job": "no_such_job"})
    assert bad.is_error
    assert "no job template" in json.dumps(bad.model_dump(mode="json")["content"])


def run_with(open_session_: Callable[[], Any], scenario: Callable[[ClientSession], Awaitable[None]]) -> None:
    async def main() -> None:
        async with open_session_() as session:
            await scenario(session)

    anyio.run(main)


def test_the_eight_run_tools_over_streamable_http(platform: Platform) -> None:
    token = open_session(platform, *operator(platform))
    run_with(lambda: over_http(platform, token), the_eight_tools)


def test_the_eight_run_tools_over_stdio(platform: Platform) -> None:
    run_with(lambda: over_stdio(platform, *operator(platform)), the_eight_tools)


def test_the_http_endpoint_refuses_a_missing_or_forged_token(platform: Platform) -> None:
    url = json.loads(platform.state_file.read_text())["mcp_url"]
    hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    for headers in ({}, {"Authorization": "Bearer forged.token.value"}):
        response = httpx2.post(url, json=hello, headers={**accept, **headers}, timeout=30)
        assert response.status_code == 401, response.text


def test_an_agent_cannot_set_the_allowlist_through_mcp(platform: Platform) -> None:
    added = platform.cli("agents", "add", "mcp-runs-agent", "--role", "agent", "--json")
    secret = str(json.loads(added.stdout)["secret"])
    token = open_session(platform, "mcp-runs-agent", secret)

    async def scenario(session: ClientSession) -> None:
        refused = await session.call_tool("set_allowlist", {"entries": []})
        assert refused.is_error
        assert "403" in json.dumps(refused.model_dump(mode="json")["content"])

    run_with(lambda: over_http(platform, token), scenario)


def test_the_runs_cli(platform: Platform, tmp_path: Any) -> None:
    templates = platform.cli("runs", "templates")
    assert templates.returncode == 0, templates.stderr
    assert {t["task_key"] for t in json.loads(templates.stdout)["templates"]} == {
        "log_triage", "gpu_report", "service_map"
    }  # fmt: skip
    allowlist = tmp_path / "allowlist.json"
    allowlist.write_text(json.dumps([{"container_id": "web01", "enabled": False, "description": "paused"}]))
    assert platform.cli("runs", "allowlist", "--set", str(allowlist)).returncode == 0
    shown = json.loads(platform.cli("runs", "allowlist").stdout)
    assert shown["entries"][0]["enabled"] is False
    launched = platform.cli("runs", "launch", "service_map", "--param", "include_stopped=true", "--wait", "60")
    run = json.loads(launched.stdout)
    assert launched.returncode == 1  # no agent reports an inventory here: the run fails, and says why
    assert run["status"] == "failed"
    assert "no agent has reported an inventory" in run["error"]
    assert run["jobs"][0]["parameters"]["include_stopped"] is True
    listed = platform.cli("runs", "ls", "--job", "service_map")
    assert run["run_id"] in listed.stdout
    since = json.loads(platform.cli("runs", "since-last-success", "service_map").stdout)
    assert run["run_id"] in {r["run_id"] for r in since["runs"]}
    bad = platform.cli("runs", "launch", "log_triage", "--param", "nonsense")
    assert bad.returncode == 2
    assert "KEY=VALUE" in bad.stderr
    refused = platform.cli("runs", "launch", "log_triage", "--param", "since_seconds=1")
    assert refused.returncode == 1
    assert "since_seconds" in refused.stderr
