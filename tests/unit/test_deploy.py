"""Deploy commands for LocalStack and AWS are derived from the template (Docker is not available here,
so what can be checked is what the commands would do)."""

from __future__ import annotations

import pytest
import yaml

from lighthouse_tools.deploy import CAPABILITIES, OUTPUT_ENVIRONMENT, environment_from_outputs, main, plan
from lighthouse_tools.template import PROJECT_ROOT, load_template


def test_localstack_plan_targets_the_compose_endpoint_with_sam_capabilities() -> None:
    deploy = plan("localstack", parameters={"HeartbeatIntervalSeconds": "15"})
    build, sam_deploy = deploy.commands()

    assert build[:2] == ["sam", "build"]
    assert deploy.environment["AWS_ENDPOINT_URL"] == "http://localhost:4566"
    assert sam_deploy[sam_deploy.index("--stack-name") + 1] == "lighthouse"
    assert all(capability in sam_deploy for capability in CAPABILITIES)
    assert "HeartbeatIntervalSeconds=15" in sam_deploy
    assert "--resolve-s3" in sam_deploy


def test_aws_plan_has_no_endpoint_override() -> None:
    assert plan("aws").environment == {}


def test_unknown_parameters_and_targets_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown template parameters"):
        plan("localstack", parameters={"Nope": "1"})
    with pytest.raises(ValueError, match="unknown target"):
        plan("gcp")


def test_every_mapped_output_exists_in_the_template() -> None:
    assert set(OUTPUT_ENVIRONMENT) <= set(load_template()["Outputs"])


def test_outputs_become_environment_variables() -> None:
    outputs = [{"OutputKey": "EventsTableName", "OutputValue": "t"}, {"OutputKey": "Other", "OutputValue": "x"}]
    assert environment_from_outputs(outputs) == {"LIGHTHOUSE_EVENTS_TABLE": "t"}


def test_dry_run_prints_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["localstack", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "AWS_ENDPOINT_URL=http://localhost:4566" in printed
    assert "sam deploy" in printed


def test_the_compose_file_pins_a_community_tag_that_needs_no_token() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "localstack" / "docker-compose.yml").read_text())
    image = compose["services"]["localstack"]["image"]
    name, tag = image.split(":")
    major, minor, patch = (int(part) for part in tag.split("."))
    assert name == "localstack/localstack"
    assert (major, minor, patch) <= (4, 14, 0)
    assert "LOCALSTACK_AUTH_TOKEN" not in compose["services"]["localstack"].get("environment", {})
