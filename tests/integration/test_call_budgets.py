"""Calls per operation, counted by the local cloud (every AWS call a function makes, each Lambda
invocation, each state transition): the budgets the hot paths were cut to. A change that adds a
DynamoDB read to one of them fails here, not in a benchmark weeks later."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest

from lighthouse.auth.tokens import Principal
from lighthouse.composition import Components
from lighthouse.pipelines.models import CreateTask
from lighthouse_tools.costs import cost_per_thousand, usage_of
from lighthouse_tools.localcloud.calls import Calls
from lighthouse_tools.localcloud.cloud import LocalCloud
from tests.integration.conftest import AgentClient, eventually
from tests.integration.test_elicitation import SCHEMA, execution_status

pytestmark = pytest.mark.integration

ADMIN = Principal("budget-admin", "admin", 0, 2**40, "t-budget")


ELICITATION = ("ApiFunction", "ElicitationDispatchFunction", "ElicitationLifecycleFunction", "ProjectorFunction")
VALIDATION = ("ApiFunction", "ProjectorFunction", "ValidationDispatchFunction")


def made_by(calls: Calls, functions: tuple[str, ...], service: str | None = None) -> int:
    """Calls made by these functions (the module's cloud also runs its schedules meanwhile)."""
    return sum(n for (function, s, _), n in calls.by_function.items() if function in functions and service in (None, s))


def settled(cloud: LocalCloud) -> None:
    """Wait for the asynchronous work a request started (stream consumers, executions)."""
    cloud.wait_for_projection()


def elicitation_round_trip(cloud: LocalCloud, asker: AgentClient, answerer: AgentClient) -> None:
    body = {"to_agent": answerer.agent_id, "message": "ok?", "schema": SCHEMA}
    elicitation_id = asker.post("/elicitation/create", body).json()["elicitation_id"]
    eventually(lambda: execution_status(cloud, elicitation_id) == "RUNNING")
    listed = answerer.get("/elicitation/pending?wait=5").json()["elicitations"]
    assert [e["elicitation_id"] for e in listed] == [elicitation_id]
    answer = {"elicitation_id": elicitation_id, "action": "accept", "data": {"approved": True}}
    assert answerer.post("/elicitation/respond", {**answer, "nonce": secrets.token_hex(16)}).status_code == 200
    assert asker.get(f"/elicitation/status/{elicitation_id}?wait=5").json()["status"] == "accepted"
    eventually(lambda: execution_status(cloud, elicitation_id) == "SUCCEEDED")
    settled(cloud)


def test_an_elicitation_round_trip_makes_at_most_twelve_aws_calls(
    cloud: LocalCloud, new_agent: Callable[..., AgentClient]
) -> None:
    asker, answerer = new_agent(), new_agent()
    elicitation_round_trip(cloud, asker, answerer)  # warm: containers, the rate limiter's memory
    settled(cloud)

    with cloud.calls.measure() as calls:
        elicitation_round_trip(cloud, asker, answerer)

    assert made_by(calls, ELICITATION) <= 12, calls.as_dict()
    assert made_by(calls, ELICITATION, "dynamodb") <= 10, calls.as_dict()


def test_validate_without_experts_makes_at_most_four_aws_calls(
    cloud: LocalCloud, new_agent: Callable[..., AgentClient], tmp_path: Any
) -> None:
    agent = new_agent()
    body = {"tool_name": "Bash", "tool_input": {"command": "ls -la"}, "context": {"cwd": str(tmp_path)}}
    assert agent.post("/validate", body).status_code == 200
    settled(cloud)

    with cloud.calls.measure() as calls:
        result = agent.post("/validate", body).json()
        settled(cloud)

    assert result["decision"] == "approved"
    assert made_by(calls, VALIDATION) <= 4, calls.as_dict()
    # The rate limit's update and the decision's transaction (each of its writes twice, as
    # DynamoDB charges transactions) are what the cost model prices.
    assert calls.write_units >= 1 + 2, calls.as_dict()
    usage = usage_of(calls.as_dict(), {"ApiFunction": 512}, "ApiFunction", operations=1)
    assert usage.api_requests == 1
    assert cost_per_thousand(usage)["dynamodb"] > 0


def test_a_pipeline_stage_makes_at_most_three_dynamodb_calls(cloud: LocalCloud, parts: Components) -> None:
    from tests.perf.bench_pipelines import config

    parts.pipelines.register(ADMIN, config())

    def run() -> None:
        task = parts.tasks.create_task(ADMIN, CreateTask(input={"n": 0}, pipeline="linear10"))
        while task.status in ("PENDING", "RUNNING"):
            task = parts.tasks.task(ADMIN, task.task_id, wait_seconds=20)
        assert task.status == "COMPLETED"

    run()
    settled(cloud)
    with cloud.calls.measure() as calls:
        run()
        settled(cloud)

    stages = calls.invocations["PipelineStageFunction"]
    assert stages == 11  # ten stages and the completion
    assert made_by(calls, ("PipelineStageFunction",)) <= 3 * stages, calls.as_dict()
    assert {service for (function, service, _) in calls.by_function if function == "PipelineStageFunction"} == {
        "dynamodb"
    }
