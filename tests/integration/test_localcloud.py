"""The embedded local cloud runs the real handlers behind HTTP, SQS, Streams, Step Functions and
schedules, all provisioned from template.yaml."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
import requests

from lighthouse.agents.logic import AgentDirectoryProjection
from lighthouse.composition import Components
from lighthouse.events import EventStore
from lighthouse_tools.localcloud.cloud import REGION, LocalCloud
from tests.events_for_tests import Written
from tests.helpers import race_appenders
from tests.integration.conftest import AgentClient, eventually

pytestmark = pytest.mark.integration


def http_client(cloud: LocalCloud, service: str) -> Any:
    """A client that goes over HTTP to the printed endpoint, as an outside tool would."""
    return boto3.client(service, endpoint_url=cloud.aws_endpoint_url, region_name=REGION)  # type: ignore[call-overload]


def presence(agent: AgentClient, agent_id: str | None = None) -> str:
    response = agent.get(f"/agents/{agent_id or agent.agent_id}")
    return str(response.json().get("presence")) if response.status_code == 200 else ""


def test_every_template_resource_is_provisioned_or_named_as_not_emulated(cloud: LocalCloud) -> None:
    assert cloud.stack is not None
    from lighthouse_tools.template import load_template

    resources = load_template()["Resources"]
    provisioned = set(cloud.stack.resolver.physical_ids)
    assert provisioned == set(resources)
    from lighthouse_tools.localcloud.provision import NOT_EMULATED

    assert sorted(s.split(" ")[0] for s in cloud.stack.skipped) == sorted(
        name for name, r in resources.items() if r["Type"] in NOT_EMULATED
    )
    # the IoT topic rules are run by the local rule runner, the same four the template declares
    assert set(cloud.stack.topic_rules) == {n for n, r in resources.items() if r["Type"] == "AWS::IoT::TopicRule"}
    assert {rule.name for rule in cloud.topic_rules.rules} == set(cloud.stack.topic_rules)


def test_health_over_http(cloud: LocalCloud) -> None:
    response = requests.get(f"{cloud.api_url}/health", timeout=10)
    assert response.status_code == 200
    assert all(check["ok"] for check in response.json()["dependencies"].values())


def test_an_unknown_route_is_a_404_in_the_api_error_format_like_the_templates_gateway_responses(
    cloud: LocalCloud,
) -> None:
    response = requests.get(f"{cloud.api_url}/nowhere", headers={"Authorization": "Bearer secret-ish"}, timeout=10)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
    assert "secret-ish" not in response.text


def test_a_heartbeat_over_http_reaches_the_read_model_through_the_stream(
    cloud: LocalCloud, new_agent: Callable[..., AgentClient]
) -> None:
    agent = new_agent()
    assert agent.post("/agents/heartbeat", {"status": "busy", "metadata": {"model": "m1"}}).status_code == 200

    eventually(lambda: presence(agent) == "online")
    view = agent.get(f"/agents/{agent.agent_id}").json()
    assert (view["status"], view["metadata"]) == ("busy", {"model": "m1"})
    listed = {a["agent_id"] for a in agent.get("/agents?limit=200").json()["agents"]}
    assert agent.agent_id in listed


def test_a_silent_agent_goes_offline_by_the_scheduled_state_machine(
    parts: Components, cloud: LocalCloud, new_agent: Callable[..., AgentClient]
) -> None:
    agent = new_agent()
    agent.post("/agents/heartbeat", {})
    eventually(lambda: presence(agent) == "online")

    # 3 intervals of 1 s, plus the sweep's period (1.2 s at this time scale)
    eventually(lambda: presence(agent) == "offline", timeout=20)

    stored = parts.events.load(f"agent#{agent.agent_id}")
    assert stored[-1].type == "AGENT_WENT_OFFLINE"
    stepfunctions = cloud.client("stepfunctions")
    machine = cloud.stack.resolver.physical_ids["PresenceStateMachine"]  # type: ignore[union-attr]
    executions = stepfunctions.list_executions(stateMachineArn=machine, statusFilter="SUCCEEDED")["executions"]
    assert executions


def test_heartbeats_published_to_sqs_by_a_boto3_producer_are_recorded(
    cloud: LocalCloud, new_agent: Callable[..., AgentClient]
) -> None:
    agent = new_agent()
    sqs = http_client(cloud, "sqs")
    queue_url = sqs.get_queue_url(QueueName="lighthouse-PresenceQueue")["QueueUrl"]

    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"token": agent.token, "status": "idle"}))

    eventually(lambda: presence(agent) == "online")
    assert agent.get(f"/agents/{agent.agent_id}").json()["status"] == "idle"


def test_a_bad_message_is_set_aside_in_the_dlq_at_once_while_its_batch_mates_succeed(
    parts: Components, cloud: LocalCloud, new_agent: Callable[..., AgentClient]
) -> None:
    first, second = new_agent(), new_agent()
    sqs = http_client(cloud, "sqs")
    queue_url = sqs.get_queue_url(QueueName="lighthouse-PresenceQueue")["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName="lighthouse-PresenceDeadLetterQueue")["QueueUrl"]
    sqs.send_message_batch(
        QueueUrl=queue_url,
        Entries=[
            {"Id": "1", "MessageBody": json.dumps({"token": first.token})},
            {"Id": "2", "MessageBody": json.dumps({"token": "lh1.forged.token"})},
            {"Id": "3", "MessageBody": json.dumps({"token": second.token})},
        ],
    )

    def dead_letters() -> list[dict[str, Any]]:
        return list(sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10).get("Messages", []))

    dead = eventually(dead_letters, timeout=30, interval=0.5)

    assert len(dead) == 1
    set_aside = json.loads(dead[0]["Body"])
    assert json.loads(set_aside["record"]["body"])["token"] == "lh1.forged.token"
    assert set_aside["responseContext"]["functionError"].startswith("Unauthenticated")
    # Set aside on its first delivery, not after the queue's five receives.
    assert set_aside["record"]["attributes"]["ApproximateReceiveCount"] == "1"

    # The good messages were handled once each and deleted: a receive may have returned the batch in
    # parts, so wait for the queue to drain before counting their heartbeats.
    def drained() -> bool:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        counts = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
        return all(counts[name] == "0" for name in names)

    eventually(drained, timeout=30, interval=0.2)
    for agent in (first, second):
        heartbeats = [e for e in parts.events.load(f"agent#{agent.agent_id}") if e.type == "AGENT_HEARTBEAT"]
        assert len(heartbeats) == 1


def test_a_failing_stream_batch_is_retried_until_the_read_model_is_right(
    cloud: LocalCloud, new_agent: Callable[..., AgentClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = new_agent()
    cloud.wait_for_projection()
    original = AgentDirectoryProjection.apply
    failures = {"left": 2}

    def flaky(self: AgentDirectoryProjection, document: Any, event: Any) -> Any:
        if event.stream_id == f"agent#{agent.agent_id}" and failures["left"] > 0:
            failures["left"] -= 1
            raise RuntimeError("projector crashed mid-batch")
        return original(self, document, event)

    monkeypatch.setattr(AgentDirectoryProjection, "apply", flaky)
    errors_before = cloud.stream_poller().errors

    agent.post("/agents/heartbeat", {"status": "busy"})

    eventually(lambda: presence(agent) == "online")
    assert failures["left"] == 0
    assert cloud.stream_poller().errors >= errors_before + 2


def test_a_duplicated_stream_delivery_changes_nothing(
    parts: Components, cloud: LocalCloud, new_agent: Callable[..., AgentClient]
) -> None:
    agent = new_agent()
    agent.post("/agents/heartbeat", {})
    eventually(lambda: presence(agent) == "online")
    cloud.wait_for_projection()
    before = parts.read_models.get("agents", agent.agent_id)

    streams = cloud.client("dynamodbstreams")
    source = cloud.stream_poller().source
    shard = streams.describe_stream(StreamArn=source.stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=source.stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    records = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    mine = [r for r in records if r["dynamodb"]["Keys"]["stream_id"]["S"] == f"agent#{agent.agent_id}"]
    assert cloud.runtime is not None
    result = cloud.runtime.invoke("ProjectorFunction", {"Records": [{**r, "dynamodb": {**r["dynamodb"],
        "ApproximateCreationDateTime": 0}} for r in mine]})  # fmt: skip

    assert not result.failed
    assert result.payload == {"batchItemFailures": []}
    after = parts.read_models.get("agents", agent.agent_id)
    assert (after.revision, after.body) == (before.revision, before.body)


def test_a_task_state_runs_the_real_handler_and_catch_matches_its_error_type(cloud: LocalCloud) -> None:
    assert cloud.stack is not None
    stepfunctions = http_client(cloud, "stepfunctions")
    projector_arn = cloud.stack.functions["ProjectorFunction"].arn
    definition = {
        "StartAt": "Invoke",
        "States": {
            "Invoke": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": projector_arn, "Payload": {"not": "a stream batch"}},
                "Catch": [{"ErrorEquals": ["UnexpectedBatchTypeError"], "Next": "Caught", "ResultPath": "$.error"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    machine = stepfunctions.create_state_machine(
        name="catch-test", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/x"
    )["stateMachineArn"]

    execution = stepfunctions.start_execution(stateMachineArn=machine, input="{}")["executionArn"]

    described = eventually(
        lambda: (d := stepfunctions.describe_execution(executionArn=execution))["status"] != "RUNNING" and d
    )
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["error"]["Error"] == "UnexpectedBatchTypeError"


def test_the_lambda_invoke_api_reaches_the_local_runtime(cloud: LocalCloud) -> None:
    lambda_client = http_client(cloud, "lambda")

    ok = lambda_client.invoke(FunctionName="lighthouse-PresenceSweepFunction", Payload=b"{}")
    failed = lambda_client.invoke(FunctionName="lighthouse-ProjectorFunction", Payload=b"{}")

    assert json.loads(ok["Payload"].read())["count"] >= 0
    assert "FunctionError" not in ok
    assert failed["FunctionError"] == "Unhandled"
    assert json.loads(failed["Payload"].read())["errorType"] == "UnexpectedBatchTypeError"


def test_fifty_concurrent_appenders_over_the_http_endpoint(cloud: LocalCloud) -> None:
    env = cloud.function_environment()
    store = EventStore.dynamodb(
        http_client(cloud, "dynamodb"), env["LIGHTHOUSE_EVENTS_TABLE"], env["LIGHTHOUSE_SNAPSHOTS_TABLE"]
    )

    race_appenders(store, "contention", writers=50)

    loaded = store.load("contention")
    assert [e.version for e in loaded] == list(range(1, 51))
    assert sorted(e.event.writer for e in loaded if isinstance(e.event, Written)) == list(range(50))
