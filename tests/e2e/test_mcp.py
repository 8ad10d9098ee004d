"""`lighthouse mcp` driven by the official MCP SDK client over stdio, against `lighthouse up`."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.e2e.conftest import LIGHTHOUSE, Platform

pytestmark = pytest.mark.e2e

FORM = {
    "type": "object",
    "properties": {
        "approved": {"type": "boolean", "description": "deploy now?"},
        "window": {"type": "string", "enum": ["now", "tonight"]},
    },
    "required": ["approved"],
}
Elicitor = Callable[[Any, types.ElicitRequestParams], Awaitable[types.ElicitResult | types.ErrorData]]


def register(platform: Platform, agent_id: str, role: str = "agent") -> str:
    added = platform.cli("agents", "add", agent_id, "--role", role, "--json")
    assert added.returncode == 0, added.stderr
    return str(json.loads(added.stdout)["secret"])


def server_for(platform: Platform, agent_id: str, secret: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=LIGHTHOUSE,
        args=["--state-file", str(platform.state_file), "mcp", "--agent-id", agent_id],
        env={**os.environ, "LIGHTHOUSE_AGENT_SECRET": secret},
    )


async def call(session: ClientSession, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result
    assert result.structured_content is not None
    return dict(result.structured_content)


def run_pair(
    platform: Platform, requester: tuple[str, str], human: tuple[str, str], elicitor: Elicitor, scenario: Any
) -> Any:
    """Open one MCP session per agent (the human's client can answer forms) and run `scenario`."""

    async def main() -> Any:
        async with (
            stdio_client(server_for(platform, *requester)) as (read_a, write_a),
            ClientSession(read_a, write_a) as asker,
            stdio_client(server_for(platform, *human)) as (read_h, write_h),
            ClientSession(read_h, write_h, elicitation_callback=elicitor) as person,
        ):
            await asker.initialize()
            await person.initialize()
            return await scenario(asker, person)

    return anyio.run(main)


def test_the_tools_are_listed_and_a_connected_agent_is_online(platform: Platform) -> None:
    secret = register(platform, "mcp-lister", role="expert")

    async def main() -> list[str]:
        async with (
            stdio_client(server_for(platform, "mcp-lister", secret)) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            tools = sorted(tool.name for tool in (await session.list_tools()).tools)
            for _ in range(100):  # the server heartbeats while connected: an expert can be asked to vote
                listing = platform.cli("agents", "list").stdout
                if any(line.startswith("mcp-lister\texpert\tonline") for line in listing.splitlines()):
                    return tools
                await anyio.sleep(0.1)
            raise AssertionError(f"the MCP-connected agent never showed online: {listing}")

    assert anyio.run(main) == [
        "get_allowlist",
        "get_directive",
        "get_run",
        "get_run_report",
        "launch_run",
        "lighthouse_check_elicitations",
        "lighthouse_elicit_information",
        "lighthouse_respond_to_elicitation",
        "lighthouse_wait_for_elicitations",
        "list_directives",
        "list_runs",
        "set_allowlist",
    ]


def test_a_human_answers_a_form_through_mcp_elicitation_and_the_requester_gets_a_signed_answer(
    platform: Platform,
) -> None:
    requester = ("mcp-asker", register(platform, "mcp-asker"))
    human = ("mcp-human", register(platform, "mcp-human", role="human"))
    seen: list[types.ElicitRequestParams] = []

    async def human_says_yes(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        seen.append(params)
        return types.ElicitResult(action="accept", content={"approved": True, "window": "tonight"})

    async def scenario(asker: ClientSession, person: ClientSession) -> tuple[dict[str, Any], dict[str, Any]]:
        answers: dict[str, Any] = {}

        async def ask() -> None:
            answers["asker"] = await call(
                asker,
                "lighthouse_elicit_information",
                {"to_agent": "mcp-human", "message": "Deploy v2?", "schema": FORM, "wait_seconds": 20},
            )

        async with anyio.create_task_group() as group:
            group.start_soon(ask)
            checked: dict[str, Any] = {"elicitations": []}
            with anyio.fail_after(20):
                while not checked["elicitations"]:
                    await anyio.sleep(0.1)
                    checked = await call(person, "lighthouse_check_elicitations", {})
        return answers["asker"], checked

    asked, checked = run_pair(platform, requester, human, human_says_yes, scenario)

    assert seen[0].message == "mcp-asker asks: Deploy v2?"
    assert checked["elicitations"][0]["answered"] == "accepted"
    assert asked["status"] == "accepted"
    assert asked["response"]["data"] == {"approved": True, "window": "tonight"}
    assert asked["signature_verified"] is True


def test_decline_maps_to_decline_and_cancel_leaves_the_question_pending(platform: Platform) -> None:
    requester = ("mcp-asker-2", register(platform, "mcp-asker-2"))
    human = ("mcp-human-2", register(platform, "mcp-human-2", role="human"))
    choices = iter(["decline", "cancel"])

    async def human_chooses(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action=next(choices))

    async def scenario(asker: ClientSession, person: ClientSession) -> list[dict[str, Any]]:
        first = await call(asker, "lighthouse_elicit_information", {"to_agent": "mcp-human-2", "message": "one",
                                                                    "schema": FORM, "priority": "urgent"})  # fmt: skip
        second = await call(asker, "lighthouse_elicit_information", {"to_agent": "mcp-human-2", "message": "two",
                                                                     "schema": FORM})  # fmt: skip
        with anyio.fail_after(20):
            while True:
                checked = await call(person, "lighthouse_check_elicitations", {"ask_human": False})
                if len(checked["elicitations"]) == 2:
                    break
                await anyio.sleep(0.1)
        answered = await call(person, "lighthouse_check_elicitations", {})
        statuses = [platform_status(platform, requester, created["elicitation_id"]) for created in (first, second)]
        return [answered, *statuses]

    answered, first_status, second_status = run_pair(platform, requester, human, human_chooses, scenario)

    assert [e["answered"] for e in answered["elicitations"]] == ["declined", "left pending (the form was dismissed)"]
    assert first_status == "declined"
    assert second_status == "pending"


def platform_status(platform: Platform, agent: tuple[str, str], elicitation_id: str) -> str:
    from lighthouse_tools.client import LighthouseClient

    return str(LighthouseClient(platform.api_url, *agent).status(elicitation_id)["status"])


def test_the_respond_tool_reports_schema_violations(platform: Platform) -> None:
    requester = ("mcp-asker-3", register(platform, "mcp-asker-3"))
    agent = ("mcp-agent-3", register(platform, "mcp-agent-3"))

    async def never(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        raise AssertionError("agents answer with the respond tool")

    async def scenario(asker: ClientSession, responder: ClientSession) -> tuple[dict[str, Any], dict[str, Any]]:
        created = await call(asker, "lighthouse_elicit_information", {"to_agent": "mcp-agent-3", "message": "q",
                                                                      "schema": FORM})  # fmt: skip
        answer = {"elicitation_id": created["elicitation_id"], "action": "accept"}
        bad = await call(responder, "lighthouse_respond_to_elicitation", {**answer, "data": {"approved": "y"}})
        good = await call(responder, "lighthouse_respond_to_elicitation", {**answer, "data": {"approved": False}})
        return bad, good

    bad, good = run_pair(platform, requester, agent, never, scenario)

    assert bad["error"]["status"] == 422
    assert good["status"] == "accepted"


def test_a_pushed_question_is_answered_through_mcp_without_polling(platform: Platform) -> None:
    # GIVEN a requester and a human, each behind its own `lighthouse mcp` (push over the WebSocket API)
    requester = ("push-asker", register(platform, "push-asker"))
    human = ("push-human", register(platform, "push-human", role="human"))
    logged: list[str] = []

    async def human_says_no_window(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"approved": True, "window": "now"})

    async def log(params: types.LoggingMessageNotificationParams) -> None:
        logged.append(str(params.data))

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        async with (
            stdio_client(server_for(platform, *requester)) as (read_a, write_a),
            ClientSession(read_a, write_a) as asker,
            stdio_client(server_for(platform, *human)) as (read_h, write_h),
            ClientSession(read_h, write_h, elicitation_callback=human_says_no_window, logging_callback=log) as person,
        ):
            await asker.initialize()
            await person.initialize()
            # The human's server has connected its WebSocket once this first wait returns (it waits
            # for a connect in progress: on an emulator the first $connect is a cold start).
            warm = await call(person, "lighthouse_wait_for_elicitations", {"wait_seconds": 1})
            assert warm["delivery"] == "websocket", warm
            answers: dict[str, Any] = {}

            async def wait_for_question() -> None:
                # WHEN the human's client waits for questions (one call, no polling loop)
                answers["person"] = await call(person, "lighthouse_wait_for_elicitations", {"wait_seconds": 30})

            async with anyio.create_task_group() as group:
                group.start_soon(wait_for_question)
                await anyio.sleep(0.5)
                # AND the requester asks and waits for the answer (pushed too)
                answers["asker"] = await call(
                    asker,
                    "lighthouse_elicit_information",
                    {"to_agent": "push-human", "message": "Ship it?", "schema": FORM, "wait_seconds": 30},
                )
            return answers["person"], answers["asker"]

    person, asked = anyio.run(main)

    # THEN the question reached the human by push, was answered through the form, and no request
    # long-polled the API on either side
    assert person["delivery"] == "websocket", person
    assert person["long_polls"] == 0
    assert person["elicitations"][0]["answered"] == "accepted"
    assert any("elicitation.requested" in line for line in logged), logged
    assert asked["status"] == "accepted"
    assert asked["response"]["data"] == {"approved": True, "window": "now"}
    assert asked["signature_verified"] is True
