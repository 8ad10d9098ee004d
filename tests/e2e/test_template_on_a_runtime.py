"""What the template wires together, seen from outside on whichever target runs it: the dead-letter
queue of the SQS consumer, the schedule, the validation state machine's expert round (a Map of
task-token waits) and an elicitation's deadline."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Platform, open_session, wait_for

pytestmark = pytest.mark.e2e


class Agent:
    def __init__(self, platform: Platform, agent_id: str, role: str = "agent") -> None:
        added = platform.cli("agents", "add", agent_id, "--role", role, "--json")
        assert added.returncode == 0, added.stderr
        self.agent_id = agent_id
        self.api = platform.api_url
        self.http = requests.Session()
        self.http.headers["Authorization"] = (
            f"Bearer {open_session(platform, agent_id, json.loads(added.stdout)['secret'])}"
        )

    def get(self, path: str) -> Any:
        response = self.http.get(f"{self.api}{path}", timeout=40)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.http.post(f"{self.api}{path}", json=body, timeout=40)


def test_a_heartbeat_that_can_never_be_processed_is_set_aside_in_the_dead_letter_queue(platform: Platform) -> None:
    sqs = platform.aws("sqs")
    resources = platform.environment
    marker = secrets.token_hex(8)

    sqs.send_message(QueueUrl=resources["LIGHTHOUSE_PRESENCE_QUEUE_URL"], MessageBody=f"not json {marker}")

    def set_aside() -> list[dict[str, Any]]:
        received = sqs.receive_message(
            QueueUrl=resources["LIGHTHOUSE_PRESENCE_DEAD_LETTER_QUEUE_URL"],
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            VisibilityTimeout=0,
        )
        return [m for m in received.get("Messages", []) if marker in m["Body"]]

    (message,) = wait_for(set_aside, timeout=30)
    assert "not valid JSON" in message["Body"] or "JSON" in message["Body"], message["Body"]


def test_three_experts_hold_a_round_on_the_validation_state_machine(platform: Platform, tmp_path: Any) -> None:
    run = secrets.token_hex(3)
    experts = [Agent(platform, f"e2e-expert-{run}-{n}", "expert") for n in range(3)]
    for expert in experts:
        assert expert.post("/agents/heartbeat", {}).status_code == 200
    agent = Agent(platform, f"e2e-gated-{run}")
    wait_for(lambda: all(agent.get(f"/agents/{e.agent_id}")["presence"] == "online" for e in experts), timeout=30)

    # Neither everyday work nor a deny class by the default policies: the experts decide.
    asked = agent.post(
        "/validate",
        {
            "tool_name": "Bash",
            "tool_input": {"command": "docker run --rm alpine true"},
            "context": {"cwd": str(tmp_path)},
        },
    )
    assert asked.status_code == 200, asked.text
    request_id = asked.json()["request_id"]
    assert asked.json()["status"] == "awaiting_experts", asked.json()

    def questions() -> list[tuple[Agent, str]] | None:
        found = [
            (expert, question["elicitation_id"])
            for expert in experts
            for question in expert.get("/elicitation/pending")["elicitations"]
            if request_id in question["message"]
        ]
        return found if len(found) >= 2 else None

    for expert, elicitation_id in wait_for(questions, timeout=30)[:2]:
        vote = {"decision": "block", "confidence": 0.9, "reasoning": "not in this repository", "concerns": []}
        body = {"elicitation_id": elicitation_id, "action": "accept", "data": vote, "nonce": secrets.token_hex(16)}
        assert expert.post("/elicitation/respond", body).status_code == 200

    decided = wait_for(lambda: (r := agent.get(f"/validate/{request_id}?wait=10"))["status"] == "decided" and r, 60)
    assert (decided["decision"], decided["decided_by"]) == ("blocked", "experts")
    assert decided["consensus"]["reached"] is True


def test_the_schedule_runs_the_presence_sweep(platform: Platform) -> None:
    stepfunctions = platform.aws("stepfunctions")
    machines = stepfunctions.list_state_machines()["stateMachines"]
    (sweep,) = [m["stateMachineArn"] for m in machines if "PresenceStateMachine" in m["name"]]

    def a_finished_sweep() -> bool:
        executions = stepfunctions.list_executions(stateMachineArn=sweep)["executions"]
        return any(e["status"] == "SUCCEEDED" for e in executions)

    # The template's schedule is rate(1 minute): one sweep must have run within about a minute.
    assert wait_for(a_finished_sweep, timeout=90)


@pytest.mark.target_gap("timeout-seconds-path")
def test_an_unanswered_question_expires_at_its_deadline(platform: Platform) -> None:
    run = secrets.token_hex(3)
    asker, answerer = Agent(platform, f"e2e-late-asker-{run}"), Agent(platform, f"e2e-late-answerer-{run}")
    created = asker.post(
        "/elicitation/create",
        {"to_agent": answerer.agent_id, "message": "Still there?", "schema": {"type": "object"}, "timeout_seconds": 2},
    )
    assert created.status_code == 201, created.text
    started = time.monotonic()

    status = wait_for(
        lambda: (
            (s := asker.get(f"/elicitation/status/{created.json()['elicitation_id']}?wait=5"))["status"] != "pending"
            and s
        ),
        timeout=30,
    )

    assert status["status"] == "expired"
    assert time.monotonic() - started < 20
