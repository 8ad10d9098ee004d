"""The in-process embedded cloud on a data directory, stopped and started again in one test: every
service's state comes back, stream consumers go on from their checkpoints, and an execution that was
running shows as aborted and linked to the one that carries on."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from lighthouse_tools.localcloud.cloud import LocalCloud, LocalCloudOptions
from tests.integration.platform import eventually

pytestmark = pytest.mark.integration


@contextmanager
def durable_cloud(data_dir: Path) -> Iterator[LocalCloud]:
    options = LocalCloudOptions(aws_port=0, api_port=0, data_dir=data_dir, start_schedules=False, verify_layer=False)
    with LocalCloud(options) as cloud:
        yield cloud


def _table_items(cloud: LocalCloud, table: str) -> list[dict[str, Any]]:
    return list(cloud.client("dynamodb").scan(TableName=table)["Items"])


def test_objects_and_secrets_survive_a_restart(tmp_path: Path) -> None:
    with durable_cloud(tmp_path / "data") as cloud:
        environment = cloud.function_environment()
        bucket = cloud.stack.resolver.physical_ids["WorkspaceBucket"] if cloud.stack else ""
        cloud.client("s3").put_object(Bucket=bucket, Key="notes/a.txt", Body=b"kept")
        secrets = cloud.client("secretsmanager")
        master = secrets.get_secret_value(SecretId=environment["LIGHTHOUSE_MASTER_SECRET_ARN"])
        operator = cloud.operator_credential()
        changed = secrets.create_secret(Name="probe/changed", SecretString="first")["ARN"]
        secrets.put_secret_value(SecretId=changed, SecretString="second")
        gone = secrets.create_secret(Name="probe/gone", SecretString="x")["ARN"]
        secrets.delete_secret(SecretId=gone, ForceDeleteWithoutRecovery=True)
    with durable_cloud(tmp_path / "data") as cloud:
        environment = cloud.function_environment()
        body = cloud.client("s3").get_object(Bucket=bucket, Key="notes/a.txt")["Body"].read()
        assert body == b"kept"
        secret = cloud.client("secretsmanager").get_secret_value(SecretId=environment["LIGHTHOUSE_MASTER_SECRET_ARN"])
        assert secret["SecretString"] == master["SecretString"]
        assert cloud.operator_credential() == operator
        secrets = cloud.client("secretsmanager")
        assert secrets.get_secret_value(SecretId="probe/changed")["SecretString"] == "second"
        assert "probe/gone" not in {s["Name"] for s in secrets.list_secrets()["SecretList"]}


def test_queue_messages_come_back_and_in_flight_ones_after_their_visibility_timeout(tmp_path: Path) -> None:
    with durable_cloud(tmp_path / "data") as cloud:
        sqs = cloud.client("sqs")
        # A template queue no function polls: the presence dead-letter queue.
        queue = next(url for url in sqs.list_queues()["QueueUrls"] if "PresenceDeadLetterQueue" in url)
        sqs.send_message(QueueUrl=queue, MessageBody="waiting")
        sqs.send_message(QueueUrl=queue, MessageBody="in flight")
        received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, VisibilityTimeout=3)["Messages"]
        in_flight = received[0]["Body"]
    with durable_cloud(tmp_path / "data") as cloud:
        sqs = cloud.client("sqs")
        visible = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=30)["Messages"]
        assert [m["Body"] for m in visible] == [b for b in ("waiting", "in flight") if b != in_flight]
        later = eventually(lambda: sqs.receive_message(QueueUrl=queue, AttributeNames=["All"]).get("Messages"), 10)
        assert [m["Body"] for m in later] == [in_flight]
        assert later[0]["Attributes"]["ApproximateReceiveCount"] == "2"


def test_stream_consumers_go_on_from_their_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with durable_cloud(tmp_path / "data") as cloud:
        cloud.components().agents.register("before-restart", "agent")
        cloud.wait_for_projection()
        checkpoint = max(cloud.persistence.checkpoints("ProjectorFunction").values()) if cloud.persistence else 0
    assert checkpoint > 0
    with durable_cloud(tmp_path / "data") as cloud:
        assert cloud.runtime is not None
        delivered: list[int] = []
        invoke = cloud.runtime.invoke

        def watched(logical_id: str, event: Any) -> Any:
            if logical_id == "ProjectorFunction":
                delivered.extend(int(r["dynamodb"]["SequenceNumber"]) for r in event["Records"])
            return invoke(logical_id, event)

        monkeypatch.setattr(cloud.runtime, "invoke", watched)
        time.sleep(0.5)
        assert delivered == [], "records delivered before the restart were delivered again"
        cloud.components().agents.register("after-restart", "agent")
        cloud.wait_for_projection()
        assert delivered, "the new records were not delivered"
        assert min(delivered) == checkpoint + 1  # nothing skipped, nothing twice
        assert len(delivered) == len(set(delivered))
        listed = {a.agent_id for a in cloud.components().agents.list(100, None).agents}
        assert {"before-restart", "after-restart"} <= listed


def test_a_running_execution_is_aborted_and_resumed_under_a_linked_name(tmp_path: Path) -> None:
    definition = {
        "StartAt": "Wait",
        "States": {"Wait": {"Type": "Wait", "SecondsPath": "$.timeout_seconds", "End": True}},
    }
    with durable_cloud(tmp_path / "data") as cloud:
        sfn = cloud.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="durable-probe", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/x"
        )["stateMachineArn"]
        old = sfn.start_execution(stateMachineArn=machine, name="waiter", input='{"timeout_seconds": 4}')
    with durable_cloud(tmp_path / "data") as cloud:
        sfn = cloud.client("stepfunctions")
        aborted = sfn.describe_execution(executionArn=old["executionArn"])
        assert aborted["status"] == "ABORTED"
        assert aborted["error"] == "States.ServiceRestart"
        new_arn = eventually(lambda: cloud.resumed_executions)[0]
        assert new_arn.endswith(":waiter-restart1")
        assert (
            new_arn in aborted["cause"] or new_arn in sfn.describe_execution(executionArn=old["executionArn"])["cause"]
        )
        history = sfn.get_execution_history(executionArn=old["executionArn"])["events"]
        assert [e["type"] for e in history] == ["ExecutionStarted", "ExecutionAborted"]
        resumed = sfn.describe_execution(executionArn=new_arn)
        assert json.loads(resumed["input"])["timeout_seconds"] <= 4
        assert eventually(lambda: sfn.describe_execution(executionArn=new_arn)["status"] == "SUCCEEDED", 15)


def test_with_the_durable_recovery_flag_off_an_interrupted_execution_stays_aborted(tmp_path: Path) -> None:
    from lighthouse.auth.tokens import Principal
    from lighthouse.flags.logic import DURABLE_RECOVERY
    from lighthouse.flags.models import PutFlags

    definition = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 30, "End": True}}}
    with durable_cloud(tmp_path / "data") as cloud:
        admin = Principal("lighthouse-operator", "admin", 0, 2**40, "t")
        cloud.components().flags.put(admin, PutFlags(flags={DURABLE_RECOVERY: {"default": False}}))
        sfn = cloud.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="durable-probe-off", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/x"
        )["stateMachineArn"]
        old = sfn.start_execution(stateMachineArn=machine, name="waiter")
    with durable_cloud(tmp_path / "data") as cloud:
        assert cloud.skipped_recovery == 1
        time.sleep(0.5)
        assert cloud.resumed_executions == []
        aborted = cloud.client("stepfunctions").describe_execution(executionArn=old["executionArn"])
        assert aborted["status"] == "ABORTED"
