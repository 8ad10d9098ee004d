"""The validation gate on the local cloud: expert rounds on Step Functions (a Map of task-token
waits), early consensus, timeouts, the LLM expert against a local OpenAI-compatible server,
policy replacement, and Claude Code's http hook."""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lighthouse.agents.models import AgentWentOffline
from lighthouse.composition import Components
from lighthouse_tools.localcloud.cloud import LocalCloud, LocalCloudOptions
from tests.integration.conftest import TIME_SCALE, AgentClient, eventually

pytestmark = pytest.mark.integration

EXPERT_TIMEOUT = 4


class FakeOpenAI(BaseHTTPRequestHandler):
    """Speaks OpenAI's chat completions; the reply is whatever the test put in `reply`."""

    reply: dict[str, Any] = {}
    requests: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOpenAI.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": json.dumps(self.reply)}}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload.encode())

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def llm_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


@pytest.fixture(scope="module")
def cloud(llm_server: str) -> Iterator[LocalCloud]:
    os.environ["LIGHTHOUSE_VALIDATION_LLM_API_KEY"] = "test-key"
    options = LocalCloudOptions(
        aws_port=0,
        api_port=0,
        time_scale=TIME_SCALE,
        parameter_overrides={
            "ValidationExpertTimeoutSeconds": str(EXPERT_TIMEOUT),
            "ValidationHookWaitSeconds": "0",
            "ValidationsPerMinute": "60",
        },
    )
    try:
        with LocalCloud(options) as running:
            yield running
    finally:
        os.environ.pop("LIGHTHOUSE_VALIDATION_LLM_API_KEY", None)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("print('hi')\n")
    return tmp_path


@pytest.fixture
def panel(parts: Components, new_agent: Callable[..., AgentClient]) -> Callable[[int], list[AgentClient]]:
    """A fresh panel of online experts: the experts of earlier tests go silent (marked offline, as the
    presence sweep would) and the new ones heartbeat."""

    def make(size: int) -> list[AgentClient]:
        store = parts.events
        for old in parts.agents.list(200, None).agents:
            if old.role == "expert" and old.presence == "online":
                stream = f"agent#{old.agent_id}"
                store.append(
                    stream,
                    [AgentWentOffline(at=time.time(), reason="test: a new panel")],
                    store.current_version(stream),
                )
        experts = [new_agent("expert") for _ in range(size)]
        for expert in experts:
            assert expert.post("/agents/heartbeat", {}).status_code == 200
        eventually(lambda: sorted(online_experts(parts)) == sorted(e.agent_id for e in experts))
        return experts

    return make


def online_experts(parts: Components) -> list[str]:
    return [a.agent_id for a in parts.agents.list(200, None).agents if a.role == "expert" and a.presence == "online"]


def escalate(agent: AgentClient, cwd: Path) -> dict[str, Any]:
    """`docker run` is neither everyday work nor a deny class: the default policies leave it to the experts."""
    response = agent.post(
        "/validate",
        {"tool_name": "Bash", "tool_input": {"command": "docker run --rm alpine true"}, "context": {"cwd": str(cwd)}},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def vote_for(expert: AgentClient, request_id: str, decision: str, confidence: float = 0.9) -> Any:
    question = eventually(lambda: _vote_question(expert, request_id))
    return expert.post(
        "/elicitation/respond",
        {
            "elicitation_id": question["elicitation_id"],
            "action": "accept",
            "data": {"decision": decision, "confidence": confidence, "reasoning": f"I say {decision}", "concerns": []},
            "nonce": secrets.token_hex(16),
        },
    )


def _vote_question(expert: AgentClient, request_id: str) -> dict[str, Any] | None:
    for question in expert.get("/elicitation/pending").json()["elicitations"]:
        if request_id in question["message"]:
            return dict(question)
    return None


def test_two_agreeing_experts_settle_the_round_before_the_third_answers(
    cloud: LocalCloud, new_agent: Callable[..., AgentClient], panel: Callable[[int], list[AgentClient]], workspace: Path
) -> None:
    experts = panel(3)
    agent = new_agent()
    asked = escalate(agent, workspace)
    assert asked["status"] == "awaiting_experts"
    assert asked["expert_required"] is True
    assert sorted(asked["experts"]) == sorted(e.agent_id for e in experts)

    started = time.monotonic()
    assert vote_for(experts[0], asked["request_id"], "block").status_code == 200
    assert vote_for(experts[1], asked["request_id"], "block").status_code == 200
    result = agent.get(f"/validate/{asked['request_id']}?wait=15").json()
    assert result["status"] == "decided", result
    assert time.monotonic() - started < EXPERT_TIMEOUT  # the silent third expert did not hold it up
    assert result["decision"] == "blocked"
    assert result["decided_by"] == "experts"
    assert result["consensus"]["reached"] is True
    # The third expert's question is withdrawn: it leaves its pending list.
    eventually(lambda: _vote_question(experts[2], asked["request_id"]) is None)
    outcomes = eventually(lambda: _outcomes(agent, asked["request_id"], 3))
    assert sorted(outcomes.values()) == ["voted", "voted", "withdrawn"]


def _outcomes(agent: AgentClient, request_id: str, count: int) -> dict[str, str] | None:
    votes = agent.get(f"/validate/{request_id}").json()["votes"]
    return {v["expert"]: v["outcome"] for v in votes} if len(votes) == count else None


def test_a_silent_expert_times_out_and_a_split_panel_escalates(
    cloud: LocalCloud, new_agent: Callable[..., AgentClient], panel: Callable[[int], list[AgentClient]], workspace: Path
) -> None:
    experts = panel(3)
    agent = new_agent()
    asked = escalate(agent, workspace)
    assert vote_for(experts[0], asked["request_id"], "approve").status_code == 200
    assert vote_for(experts[1], asked["request_id"], "block").status_code == 200
    result = eventually(lambda: _decided(agent, asked["request_id"]), timeout=EXPERT_TIMEOUT + 15)
    assert result["decision"] == "escalate"
    assert "no 2/3 agreement" in result["reason"]
    assert {v["expert"]: v["outcome"] for v in result["votes"]}[experts[2].agent_id] == "timed_out"


def _decided(agent: AgentClient, request_id: str) -> dict[str, Any] | None:
    result = agent.get(f"/validate/{request_id}?wait=5").json()
    return dict(result) if result["status"] == "decided" else None


def test_a_vote_that_breaks_the_schema_is_refused_and_not_counted(
    cloud: LocalCloud, new_agent: Callable[..., AgentClient], panel: Callable[[int], list[AgentClient]], workspace: Path
) -> None:
    experts = panel(2)
    agent = new_agent()
    asked = escalate(agent, workspace)
    question = eventually(lambda: _vote_question(experts[0], asked["request_id"]))
    bad = experts[0].post(
        "/elicitation/respond",
        {
            "elicitation_id": question["elicitation_id"],
            "action": "accept",
            "data": {"decision": "yolo", "confidence": 7},
            "nonce": secrets.token_hex(16),
        },
    )
    assert bad.status_code == 422
    paths = {v["path"] for v in bad.json()["error"]["details"]["violations"]}
    assert {"$.decision", "$.confidence", "$"} <= paths
    assert agent.get(f"/validate/{asked['request_id']}").json()["votes"] == []


def test_with_fewer_than_two_experts_the_gate_escalates_without_a_round(
    cloud: LocalCloud, new_agent: Callable[..., AgentClient], panel: Callable[[int], list[AgentClient]], workspace: Path
) -> None:
    panel(1)
    result = escalate(new_agent(), workspace)
    assert result["status"] == "decided"
    assert result["decision"] == "escalate"
    assert result["expert_required"] is False
    assert "fewer than 2 experts" in result["reason"]


def test_the_llm_expert_votes_through_a_local_openai_compatible_server(
    cloud: LocalCloud,
    llm_server: str,
    new_agent: Callable[..., AgentClient],
    panel: Callable[[int], list[AgentClient]],
    workspace: Path,
) -> None:
    # A second cloud of this module would cost seconds; the LLM expert is switched on for this test only.
    with cloud.reconfigured(LIGHTHOUSE_VALIDATION_LLM_PROVIDER="openai", LIGHTHOUSE_VALIDATION_LLM_BASE_URL=llm_server):
        FakeOpenAI.reply = {
            "decision": "BLOCK",
            "confidence": 0.8,
            "reasoning": "runs arbitrary scripts",
            "concerns": ["npm scripts"],
        }
        experts = panel(1)
        agent = new_agent()
        asked = escalate(agent, workspace)
        assert sorted(asked["experts"]) == sorted(["llm-expert", experts[0].agent_id])
        assert vote_for(experts[0], asked["request_id"], "block").status_code == 200
        result = eventually(lambda: _decided(agent, asked["request_id"]), timeout=20)
        assert result["decision"] == "blocked"
        llm_vote = next(v for v in result["votes"] if v["expert"] == "llm-expert")
        assert llm_vote["decision"] == "block"
        assert llm_vote["reasoning"] == "runs arbitrary scripts"
        request = FakeOpenAI.requests[-1]
        assert request["path"] == "/v1/chat/completions"
        assert request["auth"] == "Bearer test-key"
        assert "docker run --rm alpine true" in request["body"]["messages"][1]["content"]


def test_the_round_is_a_finished_execution_with_every_vote_in_the_audit_trail(
    parts: Components,
    cloud: LocalCloud,
    new_agent: Callable[..., AgentClient],
    panel: Callable[[int], list[AgentClient]],
    workspace: Path,
) -> None:
    experts = panel(2)
    agent = new_agent()
    asked = escalate(agent, workspace)
    for expert in experts:
        assert vote_for(expert, asked["request_id"], "approve").status_code == 200
    result = eventually(lambda: _decided(agent, asked["request_id"]))
    assert result["decision"] == "approved"
    assert cloud.stack is not None
    machine = cloud.stack.resolver.physical_ids["ValidationStateMachine"]
    arn = machine.replace(":stateMachine:", ":execution:") + f":{asked['request_id']}"
    sfn = cloud.client("stepfunctions")
    eventually(lambda: sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED")
    events = [e.type for e in parts.events.load(f"validation#{asked['request_id']}")]
    assert events == ["VALIDATION_REQUESTED", "EXPERT_VOTED", "EXPERT_VOTED", "VALIDATION_COMPLETED"]
    audit = eventually(lambda: _audit_entry(agent, asked["request_id"]))
    assert audit["decision"] == "approved"
    assert audit["status"] == "decided"


def _audit_entry(agent: AgentClient, request_id: str) -> dict[str, Any] | None:
    for entry in agent.get("/validation/audit").json()["entries"]:
        if entry["request_id"] == request_id and entry["status"] == "decided":
            return dict(entry)
    return None


def test_the_hook_answers_with_the_experts_verdict_when_it_arrives_within_the_wait(
    cloud: LocalCloud, new_agent: Callable[..., AgentClient], panel: Callable[[int], list[AgentClient]], workspace: Path
) -> None:
    with cloud.reconfigured(LIGHTHOUSE_VALIDATION_HOOK_WAIT_SECONDS="15"):
        experts = panel(2)
        agent = new_agent()
        hook_token = agent.post("/hooks/token", {}).json()["hook_token"]
        answer: dict[str, Any] = {}

        def claude_code() -> None:
            response = agent.http.post(
                f"{cloud.api_url}/hooks/claude-code/pre-tool-use",
                data=json.dumps(
                    {
                        "hook_event_name": "PreToolUse",
                        "tool_name": "Bash",
                        "tool_input": {"command": "docker run --rm alpine true"},
                        "cwd": str(workspace),
                        "session_id": "s-1",
                    }
                ),
                headers={"Authorization": f"Bearer {hook_token}"},
                timeout=30,
            )
            answer.update(response.json()["hookSpecificOutput"])

        waiting = threading.Thread(target=claude_code)
        waiting.start()
        question = eventually(lambda: _any_question(experts[0]))
        request_id = question["message"].split()[2].rstrip(":")
        for expert in experts:
            assert vote_for(expert, request_id, "block").status_code == 200
        waiting.join(30)
        assert answer["permissionDecision"] == "deny"
        assert "(experts)" in answer["permissionDecisionReason"]


def _any_question(expert: AgentClient) -> dict[str, Any] | None:
    questions = expert.get("/elicitation/pending").json()["elicitations"]
    return dict(questions[0]) if questions else None
