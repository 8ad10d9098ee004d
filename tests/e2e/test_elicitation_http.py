"""Elicitation over HTTP against `lighthouse up`: two fresh agents, and a third who tries to answer."""

from __future__ import annotations

import json
import secrets

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
    metrics = asker.get(f"{api}/elicitation/metrics", timeout=10).json()
    assert metrics["security_violations"] >= 1
