"""Probes of the platform around the API (issue #10, items 9, 12-14): the served contract under
schemathesis, poison records, packaging as Lambda builds it, and who may read which secret."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from lighthouse_tools.layer import (
    LAYER_SOURCE,
    BuiltLayer,
    build_layer,
    called_services,
    check_functions,
    install_requirements,
)
from lighthouse_tools.template import PROJECT_ROOT, load_template
from tests.security.conftest import Probe, refused
from tests.security.schemathesis_run import run as run_schemathesis

SUITE_EXAMPLES = 5


# ---- 9: the served OpenAPI document is the contract -------------------------------------------


def test_schemathesis_finds_no_server_error_and_no_contract_failure(probe: Probe) -> None:
    # GIVEN the document the API serves, and an admin's and an agent's credentials
    tokens = {"admin": probe.platform.tokens["admin"], "agent": probe.platform.tokens["agent"]}
    # WHEN schemathesis generates requests for every operation (a bounded number each)
    result = run_schemathesis(probe.url, tokens, SUITE_EXAMPLES)
    summary = {k: v for k, v in result.items() if k != "passes"}
    print(f"schemathesis: {json.dumps(summary)}")
    # THEN no server error, no contract failure, and no echoed credential
    details = "\n".join(p["output_tail"] for p in result["passes"] if p["output_tail"])
    assert result["failures"] == 0, details
    assert result["errors"] == 0, details
    assert result["operations"] == result["operations_in_document"], result["passes"]
    assert result["test_cases"] > 1000
    probe.healthy_within()


# ---- 13: a poison record is set aside, not retried ahead of the rest -----------------------------


def test_an_unreadable_event_goes_to_the_failure_queue_and_holds_nothing_up(probe: Probe) -> None:
    cloud = probe.platform.cloud
    dynamodb, sqs = cloud.client("dynamodb"), cloud.client("sqs")
    events_table = next(name for name in dynamodb.list_tables()["TableNames"] if name.endswith("EventsTable"))
    failures = sqs.get_queue_url(QueueName="lighthouse-ProjectorFailureQueue")["QueueUrl"]
    # GIVEN an item in the events table that no consumer can read (its data is not JSON)
    dynamodb.put_item(
        TableName=events_table,
        Item={
            "stream_id": {"S": "agent#poison"},
            "version": {"N": "1"},
            "type": {"S": "AGENT_REGISTERED"},
            "data": {"S": "{not json"},
            "event_id": {"S": "poison"},
            "recorded_at": {"N": "1"},
        },
    )
    # WHEN an agent registers right after it
    started = time.monotonic()
    agent_id = "after-the-poison"
    probe.platform.register(agent_id, "agent")
    # THEN the agent reaches the read model at once, and the poison record waits in the failure queue
    while probe.call("GET", f"/agents/{agent_id}").status_code != 200:
        assert time.monotonic() - started < 3.0, "the read model was held up behind the poison record"
        time.sleep(0.05)
    messages = sqs.receive_message(QueueUrl=failures, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
    set_aside = [json.loads(m["Body"]) for m in messages]
    assert any(m["record"]["dynamodb"]["NewImage"]["event_id"]["S"] == "poison" for m in set_aside)
    assert all("PoisonRecord" in m["responseContext"]["functionError"] for m in set_aside)


# ---- 12: packaging as Lambda sees it ---------------------------------------------------------


def test_every_handler_imports_from_the_layer_as_built_and_nothing_else() -> None:
    # GIVEN the layer built from its requirements.txt into a clean directory (cached by hash)
    layer = build_layer()
    functions = {path.name: (path, "app") for path in (PROJECT_ROOT / "functions").iterdir() if path.is_dir()}
    # WHEN each handler, and every module its sources import, is imported with only that on the path
    problems = check_functions(functions, layer)
    # THEN nothing is missing
    assert problems == {}


def test_a_dependency_missing_from_the_layer_is_caught(tmp_path: Path) -> None:
    # GIVEN the requirements as they were before this check existed (no cedarpy, requests, jsonschema-rs)
    requirements = (LAYER_SOURCE / "requirements.txt").read_text().splitlines()
    missing = {"cedarpy", "requests", "jsonschema-rs"}
    trimmed = tmp_path / "requirements.txt"
    trimmed.write_text("\n".join(line for line in requirements if line.split("==")[0] not in missing) + "\n")
    layer = BuiltLayer(install_requirements(trimmed), LAYER_SOURCE)
    # WHEN the API handler is imported from it, THEN each missing module is named
    problems = " ".join(check_functions({"api": (PROJECT_ROOT / "functions" / "api", "app")}, layer)["api"])
    for module in ("cedarpy", "requests", "jsonschema_rs"):
        assert module in problems


def test_the_layer_pins_the_same_versions_as_the_project() -> None:
    # A direct dependency is pinned identically in pyproject.toml; one it brings in is pinned at the
    # version the project's environment runs, so the tests exercise what Lambda runs.
    pyproject = (PROJECT_ROOT / "pyproject.toml").read_text()
    for line in (LAYER_SOURCE / "requirements.txt").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        name, version = line.split("==")
        if re.search(rf'"{re.escape(name)}==', pyproject, re.IGNORECASE):
            assert f'"{line}"' in pyproject, f"{line} is not pinned identically in pyproject.toml"
        assert importlib.metadata.version(name) == version, (
            f"{line}: the project runs {importlib.metadata.version(name)}"
        )


def test_the_layer_keeps_the_botocore_model_of_every_service_the_code_calls() -> None:
    spec = importlib.util.spec_from_file_location("slim_layer", LAYER_SOURCE / "slim_layer.py")
    assert spec is not None
    assert spec.loader is not None
    slim_layer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(slim_layer)
    called = called_services(LAYER_SOURCE / "lighthouse", PROJECT_ROOT / "functions")

    assert {"dynamodb", "sqs", "stepfunctions", "secretsmanager", "s3"} <= called  # the scan sees them
    assert called <= slim_layer.SERVICES, f"add {sorted(called - slim_layer.SERVICES)} to slim_layer.SERVICES"


def test_the_layer_holds_no_build_or_test_tools() -> None:
    names = {path.name.lower() for path in build_layer().dependencies.iterdir()}

    for tool in ("pip", "setuptools", "wheel", "click", "inquirer", "moto", "pytest", "mypy", "ruff"):
        assert tool not in names, f"{tool} is in the layer"
    assert {"cedarpy", "chalice", "pydantic_core", "botocore"} <= names


# ---- 14: secrets by least privilege ------------------------------------------------------------


def _secret_readers(template: dict[str, Any], logical_id: str) -> set[str]:
    readers = set()
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for policy in resource["Properties"].get("Policies", []):
            reads = isinstance(policy, dict) and "AWSSecretsManagerGetSecretValuePolicy" in policy
            if reads and policy["AWSSecretsManagerGetSecretValuePolicy"]["SecretArn"] == {"Ref": logical_id}:
                readers.add(name)
    return readers


def test_only_the_functions_that_sign_or_verify_can_read_the_master_secret() -> None:
    template = load_template()
    assert _secret_readers(template, "MasterSecret") == {
        "ApiFunction",
        "PresenceIngestFunction",
        "ValidationRoundFunction",
        "FleetAuthorizerFunction",
        "McpFunction",  # verifies the session tokens callers present
        "RunNotifyFunction",  # signs run notifications
        "WebSocketFunction",  # verifies the token a WebSocket connect presents
    }


def test_the_stage_function_reads_connection_secrets_only() -> None:
    stage = load_template()["Resources"]["PipelineStageFunction"]["Properties"]
    text = json.dumps(stage["Policies"])
    assert "MasterSecret" not in text
    secret_statements = [
        statement
        for policy in stage["Policies"]
        if isinstance(policy, dict) and "Statement" in policy
        for statement in policy["Statement"]
        if any(str(action).startswith("secretsmanager:") for action in statement["Action"])
    ]
    assert len(secret_statements) == 1
    assert secret_statements[0]["Action"] == ["secretsmanager:GetSecretValue"]
    assert "/connections/*" in json.dumps(secret_statements[0]["Resource"])


def _manifests(agent: dict[str, Any]) -> dict[str, str]:
    return {
        "agents.yaml": yaml.safe_dump({"agents": [agent]}),
        "tools.yaml": "tools: []\n",
        "workflow.yaml": yaml.safe_dump(
            {
                "workflows": [
                    {
                        "name": "w",
                        "start": "a",
                        "nodes": [{"id": "a", "type": "agent", "agent": agent["id"]}],
                        "edges": [],
                    }
                ]
            }
        ),
        "pipelines.yaml": yaml.safe_dump({"pipelines": [{"name": "leak", "workflow": "w", "project": "probed"}]}),
    }


@pytest.mark.parametrize(
    "inline",
    [
        {"base_url": "https://attacker.example/v1", "api_key_env": "LIGHTHOUSE_MASTER_SECRET"},
        {"base_url": "https://attacker.example/v1", "connection": "x"},
        {"api_key_secret": "lighthouse-MasterSecret", "connection": "x"},
    ],
)
def test_a_manifest_cannot_point_a_key_at_a_server_of_its_choice(probe: Probe, inline: dict[str, str]) -> None:
    agent = {"id": "thief", "provider": "openai", "model": "m", **inline}
    response = probe.call("POST", "/pipelines", role="admin", body={"files": _manifests(agent)})
    problems = refused(probe, response, 422, "CONFIG_ERROR")["error"]["details"]["problems"]
    assert any("connection" in problem["message"] for problem in problems)
    assert probe.call("GET", "/pipelines/leak").status_code == 404


def test_a_connection_is_used_only_for_its_own_provider(probe: Probe) -> None:
    from lighthouse.pipelines.connections import Connection

    probe.platform.parts.connections.put(
        "local-anthropic", Connection(provider="anthropic", base_url="http://127.0.0.1:9/v1")
    )
    agent = {"id": "mismatch", "provider": "openai", "model": "m", "connection": "local-anthropic"}
    assert probe.call("POST", "/pipelines", role="admin", body={"files": _manifests(agent)}).status_code == 201
    member = probe.platform.register("member-of-probed", "agent", ["probed"])
    created = probe.call("POST", "/tasks", token=member, body={"input": {}, "pipeline": "leak"})
    assert created.status_code == 201, created.text
    task = created.json()
    final = probe.call("GET", f"/tasks/{task['task_id']}?wait=20", token=member).json()
    assert final["status"] == "FAILED"
    assert final["failure"]["category"] == "config"
    assert "is for anthropic, not openai" in final["failure"]["message"]
