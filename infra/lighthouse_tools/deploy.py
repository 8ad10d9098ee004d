"""`sam build` + `sam deploy` of template.yaml to AWS, LocalStack or MiniStack: one set of commands,
only the endpoint differs.

`lighthouse deploy [--endpoint URL]` (or `python -m lighthouse_tools.deploy`) finds out what answers at
the endpoint (nothing given: AWS), builds and deploys with the pinned SAM CLI, then writes what the CLI
and the tests need to use the stack: a state file with the API URL in the form that target serves and
the stack's resources, and the operator's credential derived from the stack's master secret.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from lighthouse_tools.template import PROJECT_ROOT, TEMPLATE_PATH, load_template

CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND")
BUILD_DIR = PROJECT_ROOT / ".aws-sam" / "build"
TARGETS = ("aws", "localstack", "ministack")
# LocalStack's documented dummy credentials; MiniStack accepts any.
EMULATOR_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}

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
    "HistoryBucketName": "LIGHTHOUSE_HISTORY_BUCKET",
    "ConsoleBucketName": "LIGHTHOUSE_CONSOLE_BUCKET",
    "PipelineStageFunctionArn": "LIGHTHOUSE_PIPELINE_STAGE_FUNCTION_ARN",
    "PipelineStatesRoleArn": "LIGHTHOUSE_PIPELINE_ROLE_ARN",
    "PipelineMachinePrefix": "LIGHTHOUSE_PIPELINE_MACHINE_PREFIX",
    "PresenceQueueUrl": "LIGHTHOUSE_PRESENCE_QUEUE_URL",
    "PresenceDeadLetterQueueUrl": "LIGHTHOUSE_PRESENCE_DEAD_LETTER_QUEUE_URL",
    "MasterSecretArn": "LIGHTHOUSE_MASTER_SECRET_ARN",
    "ApiUrl": "LIGHTHOUSE_API_URL",
    "McpUrl": "LIGHTHOUSE_MCP_URL",
    "WebSocketUrl": "LIGHTHOUSE_WEBSOCKET_URL",
    "ConnectionsTableName": "LIGHTHOUSE_CONNECTIONS_TABLE",
}
_WEBSOCKET_URL = re.compile(r"^wss://(?P<api_id>[a-z0-9]+)\.execute-api\.[^/]+/(?P<stage>[A-Za-z0-9_-]+)/?$")
_FUNCTION_URL = re.compile(r"^https://(?P<url_id>[a-z0-9]+)\.lambda-url\.(?P<region>[a-z0-9-]+)\.on\.aws/(?P<path>.*)$")
_API_GATEWAY_URL = re.compile(r"^https://(?P<api_id>[a-z0-9]+)\.execute-api\.[^/]+/(?P<stage>[A-Za-z0-9_-]+)/?$")


class DeployError(RuntimeError):
    """The deployment cannot go on; the message says why and what to do."""


def detect_target(endpoint: str | None, health_url: str | None = None) -> str:
    """`aws` without an endpoint; otherwise whichever emulator answers its own health route there."""
    if not endpoint:
        return "aws"
    probes = (
        ("ministack", f"{endpoint}/_ministack/health"),
        ("localstack", health_url or f"{endpoint}/_localstack/health"),
    )
    for target, url in probes:
        try:
            response = requests.get(url, timeout=5)
        except requests.RequestException:
            continue
        if response.status_code == 200 and response.headers.get("content-type", "").startswith("application/json"):
            return target
    raise DeployError(
        f"no LocalStack or MiniStack answers at {endpoint} (health: {health_url or endpoint + '/_localstack/health'}): "
        "start one (`make localstack-up`, or MiniStack as `make ministack-test` does) or pass the right --endpoint"
    )


def served_api_url(target: str, endpoint: str | None, api_url_output: str) -> str:
    """The stage URL as the target serves it. The template states AWS's form; emulators serve
    `<endpoint>/restapis/<id>/<stage>/_user_request_` (both LocalStack and MiniStack, no DNS needed)."""
    if target == "aws" or not endpoint:
        return api_url_output.rstrip("/")
    matched = _API_GATEWAY_URL.match(api_url_output)
    if not matched:
        raise DeployError(f"the stack's ApiUrl output {api_url_output!r} is not an API Gateway stage URL")
    return f"{endpoint.rstrip('/')}/restapis/{matched['api_id']}/{matched['stage']}/_user_request_"


def served_function_url(target: str, endpoint: str | None, url_output: str) -> str:
    """A function URL as the target serves it: MiniStack at `<endpoint>/_aws/lambda-url/<id>/`,
    LocalStack at `<id>.lambda-url.<region>.localhost.localstack.cloud:<port>`, AWS as it is."""
    matched = _FUNCTION_URL.match(url_output)
    if target == "aws" or not endpoint or not matched:
        return url_output
    if target == "ministack":
        return f"{endpoint.rstrip('/')}/_aws/lambda-url/{matched['url_id']}/{matched['path']}"
    port = endpoint.rsplit(":", 1)[-1].strip("/")
    return (
        f"http://{matched['url_id']}.lambda-url.{matched['region']}.localhost.localstack.cloud:{port}/{matched['path']}"
    )


def served_websocket_url(target: str, endpoint: str | None, url_output: str) -> str:
    """The WebSocket API as the target serves it: MiniStack at `ws://<endpoint>/_aws/execute-api/<id>/<stage>`."""
    matched = _WEBSOCKET_URL.match(url_output)
    if target != "ministack" or not endpoint or not matched:
        return url_output
    return f"{endpoint.rstrip('/').replace('http', 'ws', 1)}/_aws/execute-api/{matched['api_id']}/{matched['stage']}"


@dataclass
class DeployPlan:
    target: str
    stack_name: str
    region: str
    parameters: dict[str, str]
    endpoint: str | None = None
    sam: str = "sam"
    environment: dict[str, str] = field(default_factory=dict)

    def commands(self) -> list[list[str]]:
        build = [self.sam, "build", "--template-file", str(TEMPLATE_PATH), "--build-dir", str(BUILD_DIR)]
        deploy = [
            self.sam, "deploy", "--template-file", str(BUILD_DIR / "template.yaml"),
            "--stack-name", self.stack_name, "--region", self.region, "--resolve-s3",
            "--capabilities", *CAPABILITIES, "--no-confirm-changeset", "--no-fail-on-empty-changeset",
        ]  # fmt: skip
        if self.parameters:
            deploy += ["--parameter-overrides", *(f"{key}={value}" for key, value in sorted(self.parameters.items()))]
        return [build, deploy]


# What an emulator cannot create, switched off unless the caller says otherwise (ministack-notes.md, 3):
# MiniStack has IoT topic rules but no AWS::IoT::Authorizer; LocalStack's community edition has no IoT.
# Neither emulator has X-Ray or metric-math alarms.
TARGET_PARAMETERS = {
    "ministack": {"FleetCustomAuthorizer": "false", "XRayTracing": "false", "MetricMathAlarms": "false"},
    # LocalStack's community image has neither API Gateway v2 nor AppConfig.
    "localstack": {
        "FleetCustomAuthorizer": "false",
        "FleetTopicRules": "false",
        "WebSocketPush": "false",
        "FlagsOnAppConfig": "false",
        "XRayTracing": "false",
        "MetricMathAlarms": "false",
    },
}


def plan(
    target: str,
    stack_name: str = "lighthouse",
    parameters: dict[str, str] | None = None,
    endpoint: str | None = None,
    sam: str = "sam",
) -> DeployPlan:
    declared = load_template().get("Parameters", {})
    unknown = set(parameters or {}) - set(declared)
    if unknown:
        raise ValueError(f"unknown template parameters: {sorted(unknown)}")
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}: use one of {', '.join(TARGETS)}")
    if target == "aws":
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        return DeployPlan(target, stack_name, region, dict(parameters or {}), sam=sam)
    if not endpoint:
        raise ValueError(f"{target} needs an endpoint")
    environment = {"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1", **EMULATOR_CREDENTIALS}
    merged = {**TARGET_PARAMETERS.get(target, {}), **(parameters or {})}
    return DeployPlan(target, stack_name, "us-east-1", merged, endpoint, sam, environment)


def environment_from_outputs(outputs: list[dict[str, Any]]) -> dict[str, str]:
    return {
        OUTPUT_ENVIRONMENT[o["OutputKey"]]: o["OutputValue"] for o in outputs if o["OutputKey"] in OUTPUT_ENVIRONMENT
    }


@dataclass(frozen=True)
class Deployed:
    api_url: str
    environment: dict[str, str]
    resources: int


def client(deploy: DeployPlan, service: str) -> Any:
    """A boto3 client for the deployment's target (an emulator's endpoint and dummy credentials)."""
    import boto3

    credentials = {
        "aws_access_key_id": deploy.environment.get("AWS_ACCESS_KEY_ID"),
        "aws_secret_access_key": deploy.environment.get("AWS_SECRET_ACCESS_KEY"),
    }
    return boto3.client(service, region_name=deploy.region, endpoint_url=deploy.endpoint, **credentials)  # type: ignore[call-overload]


def describe(deploy: DeployPlan) -> Deployed:
    """The deployed stack: its API URL as the target serves it, its resources as environment variables."""
    cloudformation = client(deploy, "cloudformation")
    stack = cloudformation.describe_stacks(StackName=deploy.stack_name)["Stacks"][0]
    environment = environment_from_outputs(stack.get("Outputs", []))
    api_url = served_api_url(deploy.target, deploy.endpoint, environment["LIGHTHOUSE_API_URL"])
    environment["LIGHTHOUSE_API_URL"] = api_url
    if "LIGHTHOUSE_MCP_URL" in environment:
        environment["LIGHTHOUSE_MCP_URL"] = served_function_url(
            deploy.target, deploy.endpoint, environment["LIGHTHOUSE_MCP_URL"]
        )
    if "LIGHTHOUSE_WEBSOCKET_URL" in environment:
        environment["LIGHTHOUSE_WEBSOCKET_URL"] = served_websocket_url(
            deploy.target, deploy.endpoint, environment["LIGHTHOUSE_WEBSOCKET_URL"]
        )
    pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=deploy.stack_name)
    resources = sum(len(page["StackResourceSummaries"]) for page in pages)
    return Deployed(api_url, environment, resources)


def record(deploy: DeployPlan, deployed: Deployed, state_file: Path) -> Path:
    """Write the state file the CLI reads and the operator's credential beside it (0600)."""
    from lighthouse.agents.models import OPERATOR_ID
    from lighthouse.auth.keys import operator_secret
    from lighthouse_tools.admin import credential_path, write_credential

    state = {
        "target": deploy.target,
        "stack_name": deploy.stack_name,
        "api_url": deployed.api_url,
        "mcp_url": deployed.environment.get("LIGHTHOUSE_MCP_URL"),
        "websocket_url": deployed.environment.get("LIGHTHOUSE_WEBSOCKET_URL"),
        "console_url": f"{deployed.api_url}/console",
        "aws_endpoint_url": deploy.endpoint,
        "region": deploy.region,
        "environment": deployed.environment,
    }
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(state, indent=2))
    master = client(deploy, "secretsmanager").get_secret_value(
        SecretId=deployed.environment["LIGHTHOUSE_MASTER_SECRET_ARN"]
    )["SecretString"]
    credential = credential_path(state_file)
    write_credential(credential, deployed.api_url, OPERATOR_ID, operator_secret(master))
    return credential


def publish_console(deploy: DeployPlan, deployed: Deployed) -> int:
    """The built console into the stack's console bucket (ConsoleFunction serves it from there)."""
    from lighthouse_tools.console_assets import ConsoleNotBuilt, publish

    bucket = deployed.environment.get("LIGHTHOUSE_CONSOLE_BUCKET")
    if not bucket:
        return 0
    try:
        return publish(client(deploy, "s3"), bucket)
    except ConsoleNotBuilt as error:
        print(f"lighthouse deploy: the console is not published: {error}", file=sys.stderr)
        return 0


def run(deploy: DeployPlan, state_file: Path, dry_run: bool = False) -> int:
    prefix = " ".join(f"{key}={value}" for key, value in deploy.environment.items())
    started = time.monotonic()
    for command in deploy.commands():
        print(f"$ {prefix} {shlex.join(command)}".strip(), flush=True)
        if dry_run:
            continue
        environment = {**os.environ, **deploy.environment, "SAM_CLI_TELEMETRY": "0"}
        completed = subprocess.run(command, env=environment, cwd=PROJECT_ROOT, check=False)  # noqa: S603
        if completed.returncode != 0:
            print(f"lighthouse deploy: `{command[1]}` failed with exit code {completed.returncode}", file=sys.stderr)
            return completed.returncode
    if dry_run:
        return 0
    deployed = describe(deploy)
    credential = record(deploy, deployed, state_file)
    published = publish_console(deploy, deployed)
    print(f"Deployed stack {deploy.stack_name} to {deploy.target} in {time.monotonic() - started:.1f} s")
    print(f"  Resources:    {deployed.resources}")
    print(f"  API:          {deployed.api_url}")
    print(f"  Console:      {deployed.api_url}/console ({published} files published)")
    if deployed.environment.get("LIGHTHOUSE_MCP_URL"):
        print(f"  MCP:          {deployed.environment['LIGHTHOUSE_MCP_URL']}")
    if deploy.endpoint:
        print(f"  AWS endpoint: {deploy.endpoint}")
    print(f"  State file:   {state_file}")
    print(f"  Credential:   {credential} (the operator; `lighthouse agents add ...` uses it)", flush=True)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint", help="a LocalStack or MiniStack endpoint (or LIGHTHOUSE_AWS_ENDPOINT); none: AWS itself"
    )
    parser.add_argument("--health-url", help="the emulator's health URL (default: <endpoint>/_localstack/health)")
    parser.add_argument("--stack-name", default="lighthouse")
    parser.add_argument("--param", action="append", default=[], help="KEY=VALUE template parameter")
    parser.add_argument("--dry-run", action="store_true", help="print the commands instead of running them")


def cmd_deploy(args: argparse.Namespace) -> int:
    from lighthouse_tools.tools import SAM

    endpoint = args.endpoint or os.environ.get("LIGHTHOUSE_AWS_ENDPOINT") or None
    malformed = [pair for pair in args.param if "=" not in pair]
    if malformed:
        print(f"lighthouse deploy: --param takes KEY=VALUE, not {malformed[0]!r}", file=sys.stderr)
        return 2
    try:
        target = detect_target(endpoint, args.health_url)
        sam = os.environ.get("LIGHTHOUSE_SAM") or ("sam" if args.dry_run else str(SAM.executable()))
        deploy = plan(target, args.stack_name, dict(pair.split("=", 1) for pair in args.param), endpoint, sam)
        return run(deploy, args.state_file, args.dry_run)
    except (DeployError, ValueError) as error:
        print(f"lighthouse deploy: {error}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lighthouse_tools.deploy", description=__doc__)
    parser.add_argument("--state-file", type=Path, default=Path(".lighthouse/local.json"))
    add_arguments(parser)
    return cmd_deploy(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
