"""template.yaml is the single source of truth: it lints, translates, and obeys our queue rules."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from lighthouse_tools.openapi import OPENAPI_PATH, README_PATH, load_api_module, readme_with_table, render
from lighthouse_tools.template import TEMPLATE_PATH, load_template


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def test_cfn_lint_reports_nothing() -> None:
    from cfnlint.api import ManualArgs, lint

    matches = lint(TEMPLATE_PATH.read_text(), config=ManualArgs(regions=["us-east-1"]))
    assert [str(match) for match in matches] == []


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


def test_sam_translator_expands_the_template(template: dict[str, Any]) -> None:
    from samtranslator.translator.transform import transform

    packaged = copy.deepcopy(template)
    # What `sam package` does before the transform runs: local code paths become S3 objects.
    for name, resource in packaged["Resources"].items():
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if key in resource.get("Properties", {}):
                resource["Properties"][key] = f"s3://lighthouse-artifacts/{name}.zip"

    expanded = transform(packaged, {}, _NoManagedPolicies())

    kinds = {resource["Type"] for resource in expanded["Resources"].values()}
    assert {
        "AWS::Lambda::Function",
        "AWS::Lambda::EventSourceMapping",
        "AWS::ApiGateway::RestApi",
        "AWS::StepFunctions::StateMachine",
        "AWS::Lambda::LayerVersion",
        "AWS::Events::Rule",
    } <= kinds
    functions = resources_of(expanded, "AWS::Lambda::Function")
    assert set(functions) == set(resources_of(template, "AWS::Serverless::Function"))


def _dead_letter_queues(template: dict[str, Any]) -> set[str]:
    """Queues that receive failures: redrive targets and event-source failure destinations."""
    text = json.dumps(template)
    return {
        name
        for name in resources_of(template, "AWS::SQS::Queue")
        if f'"Fn::GetAtt": ["{name}", "Arn"]' in text
        and (f'"deadLetterTargetArn": {{"Fn::GetAtt": ["{name}", "Arn"]}}' in text
             or f'"Destination": {{"Fn::GetAtt": ["{name}", "Arn"]}}' in text)
    }  # fmt: skip


def test_every_work_queue_has_a_dlq_and_a_visibility_timeout_of_six_function_timeouts(
    template: dict[str, Any],
) -> None:
    queues = resources_of(template, "AWS::SQS::Queue")
    dead_letter = _dead_letter_queues(template)
    work = set(queues) - dead_letter
    assert work, "the template should have at least one work queue"
    default_timeout = template["Globals"]["Function"]["Timeout"]
    for name in work:
        properties = queues[name]["Properties"]
        assert properties["RedrivePolicy"]["maxReceiveCount"] >= 1, name
        assert properties["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0] in dead_letter, name
        consumers = [
            (function, event)
            for function in resources_of(template, "AWS::Serverless::Function").values()
            for event in function["Properties"].get("Events", {}).values()
            if event["Type"] == "SQS" and event["Properties"]["Queue"] == {"Fn::GetAtt": [name, "Arn"]}
        ]
        assert consumers, f"{name} has no consumer"
        for consumer, event in consumers:
            timeout = consumer["Properties"].get("Timeout", default_timeout)
            assert properties["VisibilityTimeout"] >= 6 * timeout, name
            assert "ReportBatchItemFailures" in event["Properties"]["FunctionResponseTypes"], name


def test_every_stream_consumer_retries_and_keeps_failures(template: dict[str, Any]) -> None:
    for function in resources_of(template, "AWS::Serverless::Function").values():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "DynamoDB":
                properties = event["Properties"]
                assert properties["MaximumRetryAttempts"] >= 1
                assert "OnFailure" in properties["DestinationConfig"]


def test_the_api_events_match_the_chalice_routes(template: dict[str, Any]) -> None:
    app = load_api_module().app
    chalice_routes = {(method, path) for path, methods in app.routes.items() for method in methods}

    def api_events(only: str | None = None, but: str | None = None) -> set[tuple[str, str]]:
        return {
            (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
            for name, function in resources_of(template, "AWS::Serverless::Function").items()
            if name != but and name in (only or name)
            for event in function["Properties"].get("Events", {}).values()
            if event["Type"] == "Api"
        }

    assert api_events(but="ConsoleFunction") == chalice_routes
    # The console's static files are the only other routes on the API.
    assert api_events(only="ConsoleFunction") == {("GET", "/console"), ("GET", "/console/{asset+}")}


def test_the_openapi_document_is_in_step_with_the_routes() -> None:
    app = load_api_module().app
    document = json.loads(OPENAPI_PATH.read_text())
    documented = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    chalice_routes = {(method, path.replace("+}", "}")) for path, methods in app.routes.items() for method in methods}
    assert documented == chalice_routes
    assert OPENAPI_PATH.read_text() == render(), "run `lighthouse openapi --write`"


def test_the_readme_route_table_is_in_step_with_the_routes() -> None:
    readme = README_PATH.read_text()
    assert readme == readme_with_table(readme, load_api_module().endpoints.docs), "run `lighthouse openapi --write`"


def test_the_openapi_document_is_valid_openapi_3_1() -> None:
    from openapi_spec_validator import validate

    validate(json.loads(OPENAPI_PATH.read_text()))


def test_the_projectors_stream_filter_lists_exactly_what_its_projections_read(template: dict[str, Any]) -> None:
    from lighthouse.composition import COUNTERS, PROJECTIONS

    projector = resources_of(template, "AWS::Serverless::Function")["ProjectorFunction"]
    (source,) = projector["Properties"]["Events"].values()
    (pattern,) = [json.loads(f["Pattern"]) for f in source["Properties"]["FilterCriteria"]["Filters"]]
    read = {event.TYPE for projection in [*PROJECTIONS, *COUNTERS] for event in projection.events}

    assert pattern["eventName"] == ["INSERT"]
    assert sorted(pattern["dynamodb"]["NewImage"]["type"]["S"]) == sorted(read)
