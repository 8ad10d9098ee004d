"""Elicitation over HTTP against `lighthouse up`: two fresh agents, and a third who tries to answer."""

from __future__ import annotations

import json
import secrets
import threading
from pathlib import Path

import pytest
import requests

from lighthouse.elicitation.signing import verify_response
from tests.e2e.conftest import Platform, open_session, wait_for

pytestmark = pytest.mark.e2e


def agent(platform: Platform, agent_id: str) -> requests.Session:
    secret = json.loads(platform.cli("agents", "add", agent_id, "--json").stdout)["secret"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {open_session(platform, agent_id, secret)}"
    return session


def test_two_agents_ask_and_answer_while_a_third_is_refused(platform: Platform) -> None:
    api = platform.api_url
    asker, answerer, intruder = agent(platform, "e2e-asker"), agent(platform, "e2e-answerer"), agent(platform, "e2e-x")
    schema = {"type": "object", "properties": {"tests_pass": {"type": "boolean"}}, "required": ["tests_pass"]}

    created = asker.post(
        f"{api}/elicitation/create",
        json={"to_agent": "e2e-answerer", "message": "Did the tests pass?", "schema": schema, "timeout_seconds": 60},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    elicitation_id, key = created.json()["elicitation_id"], created.json()["response_key"]

    listed = wait_for(lambda: answerer.get(f"{api}/elicitation/pending", timeout=10).json()["elicitations"], timeout=20)
    assert listed[0]["message"] == "Did the tests pass?"

    def respond(session: requests.Session, data: object) -> requests.Response:
        body = {"elicitation_id": elicitation_id, "action": "accept", "data": data, "nonce": secrets.token_hex(16)}
        return session.post(f"{api}/elicitation/respond", json=body, timeout=10)

    assert respond(intruder, {"tests_pass": False}).status_code == 403
    assert respond(answerer, {"tests_pass": "maybe"}).status_code == 422
    assert respond(answerer, {"tests_pass": True}).status_code == 200
    assert respond(answerer, {"tests_pass": True}).status_code == 409

    status = asker.get(f"{api}/elicitation/status/{elicitation_id}?wait=10", timeout=30).json()
    assert status["status"] == "accepted"
    assert verify_response(key, status["response"], elicitation_id)

    # The metrics are a projection of the event stream: eventually consistent on a deployed stack.
    def violations() -> int:
        return int(asker.get(f"{api}/elicitation/metrics", timeout=10).json()["security_violations"])

    assert wait_for(lambda: violations() >= 1, timeout=20)


def _children_of(pid: int) -> list[str]:
    names = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == pid:
            names.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
    return names


@pytest.mark.embedded_only("looks at `lighthouse up`'s worker processes and its call counter")
def test_functions_run_in_worker_processes_and_their_calls_are_counted(platform: Platform) -> None:
    assert platform.process is not None
    # `lighthouse up` runs the function code in worker processes (2 by default on this machine);
    # a long-poll in one worker is woken by an answer written from another process.
    assert sum("multiprocessing" in command for command in _children_of(platform.process.pid)) >= 1
    api = platform.api_url
    asker, answerer = agent(platform, "e2e-w-asker"), agent(platform, "e2e-w-answerer")
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    counts_url = f"{platform.aws_endpoint_url}/_lighthouse/calls"
    before = requests.get(counts_url, timeout=10).json()

    created = asker.post(
        f"{api}/elicitation/create",
        json={"to_agent": "e2e-w-answerer", "message": "ok?", "schema": schema, "timeout_seconds": 60},
        timeout=10,
    ).json()
    waiting: dict[str, requests.Response] = {}
    poll = threading.Thread(
        target=lambda: waiting.setdefault(
            "status", asker.get(f"{api}/elicitation/status/{created['elicitation_id']}?wait=20", timeout=40)
        )
    )
    poll.start()
    body = {"elicitation_id": created["elicitation_id"], "action": "accept", "data": {"ok": True}}
    assert answerer.post(f"{api}/elicitation/respond", json={**body, "nonce": secrets.token_hex(16)}, timeout=10).ok
    poll.join(40)
    assert waiting["status"].json()["status"] == "accepted"

    after = requests.get(counts_url, timeout=10).json()
    assert before["api_function"] == "ApiFunction"
    assert after["memory_mb"]["ApiFunction"] > 0
    made_by_api = {
        name: count - before["calls"]["by_function"].get(name, 0)
        for name, count in after["calls"]["by_function"].items()
        if name.startswith("ApiFunction ")
    }
    # Calls made in a worker process are attributed to the function that made them.
    assert made_by_api.get("ApiFunction dynamodb:TransactWriteItems", 0) >= 2, made_by_api
    assert after["calls"]["dynamodb_units"]["write"] > before["calls"]["dynamodb_units"]["write"]
    assert after["calls"]["invocations"]["ApiFunction"] >= before["calls"]["invocations"].get("ApiFunction", 0) + 3
