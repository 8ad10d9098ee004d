"""MiniStack: TimeoutSecondsPath on a .waitForTaskToken task is ignored (the task never times out).

    python timeout_seconds_path.py http://127.0.0.1:4566

Prints each execution's status 8 s after start: on AWS both are FAILED States.Timeout.
"""

from __future__ import annotations

import json
import sys
import time

import boto3

endpoint = sys.argv[1]
options = {
    "endpoint_url": endpoint,
    "region_name": "us-east-1",
    "aws_access_key_id": "test",
    "aws_secret_access_key": "test",
}
sqs, stepfunctions = boto3.client("sqs", **options), boto3.client("stepfunctions", **options)
queue = sqs.create_queue(QueueName="tokens")["QueueUrl"]


def machine(name: str, timeout: dict[str, object]) -> str:
    wait = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
        **timeout,
        "End": True,
    }
    definition = json.dumps({"StartAt": "Wait", "States": {"Wait": wait}})
    role = "arn:aws:iam::000000000000:role/any"
    return str(stepfunctions.create_state_machine(name=name, definition=definition, roleArn=role)["stateMachineArn"])


machines = {
    "TimeoutSecondsPath": machine("with-path", {"TimeoutSecondsPath": "$.timeout"}),
    "TimeoutSeconds": machine("with-seconds", {"TimeoutSeconds": 2}),
}
executions = {
    name: stepfunctions.start_execution(stateMachineArn=arn, input=json.dumps({"timeout": 2}))["executionArn"]
    for name, arn in machines.items()
}
time.sleep(8)
for name, arn in executions.items():
    described = stepfunctions.describe_execution(executionArn=arn)
    print(f"{name}: {described['status']} {described.get('error', '')}")
