"""Deploy commands for LocalStack and AWS, built from template.yaml so they cannot drift from it.

`python -m lighthouse_tools.deploy localstack [--dry-run]` builds and deploys to a LocalStack started
with localstack/docker-compose.yml; `aws` does the same against the account in the environment.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from lighthouse_tools.template import PROJECT_ROOT, TEMPLATE_PATH, load_template

LOCALSTACK_ENDPOINT = "http://localhost:4566"
CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND")

# Stack output -> the environment variable the CLI and functions read.
OUTPUT_ENVIRONMENT = {
    "EventsTableName": "LIGHTHOUSE_EVENTS_TABLE",
    "SnapshotsTableName": "LIGHTHOUSE_SNAPSHOTS_TABLE",
    "ReadModelsTableName": "LIGHTHOUSE_READ_MODELS_TABLE",
    "NoncesTableName": "LIGHTHOUSE_NONCES_TABLE",
    "RateLimitsTableName": "LIGHTHOUSE_RATE_LIMITS_TABLE",
    "IdempotencyTableName": "LIGHTHOUSE_IDEMPOTENCY_TABLE",
    "TaskTokensTableName": "LIGHTHOUSE_TASK_TOKENS_TABLE",
    "ElicitationStateMachineArn": "LIGHTHOUSE_ELICITATION_STATE_MACHINE_ARN",
    "ValidationStateMachineArn": "LIGHTHOUSE_VALIDATION_STATE_MACHINE_ARN",
    "MemoryTableName": "LIGHTHOUSE_MEMORY_TABLE",
    "WorkspaceBucketName": "LIGHTHOUSE_WORKSPACE_BUCKET",
    "PipelineStageFunctionArn": "LIGHTHOUSE_PIPELINE_STAGE_FUNCTION_ARN",
    "PipelineStatesRoleArn": "LIGHTHOUSE_PIPELINE_ROLE_ARN",
    "PipelineMachinePrefix": "LIGHTHOUSE_PIPELINE_MACHINE_PREFIX",
    "PresenceQueueUrl": "LIGHTHOUSE_PRESENCE_QUEUE_URL",
    "MasterSecretArn": "LIGHTHOUSE_MASTER_SECRET_ARN",
    "ApiUrl": "LIGHTHOUSE_API_URL",
}


@dataclass
class DeployPlan:
    target: str
    stack_name: str
    region: str
    parameters: dict[str, str]
    environment: dict[str, str] = field(default_factory=dict)

    def commands(self) -> list[list[str]]:
        deploy = [
            "sam",
            "deploy",
            "--template-file",
            str(PROJECT_ROOT / ".aws-sam" / "build" / "template.yaml"),
            "--stack-name",
            self.stack_name,
            "--region",
            self.region,
            "--resolve-s3",
            "--capabilities",
            *CAPABILITIES,
            "--no-confirm-changeset",
            "--no-fail-on-empty-changeset",
        ]
        if self.parameters:
            deploy += ["--parameter-overrides", *(f"{key}={value}" for key, value in sorted(self.parameters.items()))]
        return [["sam", "build", "--template-file", str(TEMPLATE_PATH)], deploy]


def plan(target: str, stack_name: str = "lighthouse", parameters: dict[str, str] | None = None) -> DeployPlan:
    declared = load_template().get("Parameters", {})
    unknown = set(parameters or {}) - set(declared)
    if unknown:
        raise ValueError(f"unknown template parameters: {sorted(unknown)}")
    if target == "localstack":
        return DeployPlan(
            target,
            stack_name,
            "us-east-1",
            dict(parameters or {}),
            {
                "AWS_ENDPOINT_URL": LOCALSTACK_ENDPOINT,
                "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test",  # LocalStack's documented dummy credentials
                "AWS_DEFAULT_REGION": "us-east-1",
            },
        )
    if target == "aws":
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        return DeployPlan(target, stack_name, region, dict(parameters or {}))
    raise ValueError(f"unknown target {target!r}: use localstack or aws")


def environment_from_outputs(outputs: list[dict[str, Any]]) -> dict[str, str]:
    return {
        OUTPUT_ENVIRONMENT[o["OutputKey"]]: o["OutputValue"] for o in outputs if o["OutputKey"] in OUTPUT_ENVIRONMENT
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lighthouse_tools.deploy")
    parser.add_argument("target", choices=["localstack", "aws"])
    parser.add_argument("--stack-name", default="lighthouse")
    parser.add_argument("--param", action="append", default=[], help="KEY=VALUE template parameter")
    parser.add_argument("--dry-run", action="store_true", help="print the commands instead of running them")
    args = parser.parse_args(argv)
    parameters = dict(pair.split("=", 1) for pair in args.param)
    deploy = plan(args.target, args.stack_name, parameters)
    env = {**os.environ, **deploy.environment}
    for command in deploy.commands():
        prefix = " ".join(f"{k}={v}" for k, v in deploy.environment.items())
        print(f"$ {prefix} {shlex.join(command)}".strip(), flush=True)
        if not args.dry_run:
            completed = subprocess.run(command, env=env, cwd=PROJECT_ROOT, check=False)  # noqa: S603
            if completed.returncode != 0:
                return completed.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
