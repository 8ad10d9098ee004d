"""The deploy commands are derived from the template, the target is found by asking the endpoint,
and the API URL is given in the form each target serves."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from lighthouse_tools.deploy import (
    CAPABILITIES,
    OUTPUT_ENVIRONMENT,
    DeployError,
    detect_target,
    environment_from_outputs,
    main,
    plan,
    served_api_url,
    served_function_url,
)
from lighthouse_tools.template import PROJECT_ROOT, load_template


def emulator(health_paths: set[str]) -> Iterator[str]:
    """A loopback HTTP server answering JSON on `health_paths` and 404 elsewhere (no network)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path in health_paths
            body = json.dumps({"services": {}} if found else {"error": "not found"}).encode()
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def ministack_like() -> Iterator[str]:
    yield from emulator({"/_ministack/health", "/_localstack/health"})


@pytest.fixture
def localstack_like() -> Iterator[str]:
    yield from emulator({"/_localstack/health"})


def test_the_target_is_whatever_answers_at_the_endpoint(ministack_like: str, localstack_like: str) -> None:
    assert detect_target(None) == "aws"
    assert detect_target(ministack_like) == "ministack"
    assert detect_target(localstack_like) == "localstack"
    with pytest.raises(DeployError, match="no LocalStack or MiniStack answers"):
        detect_target(localstack_like, health_url=f"{localstack_like}/elsewhere")


def test_nothing_listening_is_a_clear_error() -> None:
    with pytest.raises(DeployError, match="start one"):
        detect_target("http://127.0.0.1:9")


def test_emulators_serve_the_api_under_restapis_and_aws_as_stated() -> None:
    stated = "https://a1b2c3d4.execute-api.us-east-1.amazonaws.com/Prod"

    assert served_api_url("aws", None, stated) == stated
    expected = "http://127.0.0.1:4566/restapis/a1b2c3d4/Prod/_user_request_"
    assert served_api_url("ministack", "http://127.0.0.1:4566", stated) == expected
    assert served_api_url("localstack", "http://127.0.0.1:4566/", stated + "/") == expected
    with pytest.raises(DeployError, match="not an API Gateway stage URL"):
        served_api_url("ministack", "http://127.0.0.1:4566", "http://example.com/x")


def test_an_emulator_plan_only_adds_the_endpoint_dummy_credentials_and_its_gaps() -> None:
    endpoint = "http://127.0.0.1:4566"
    emulated = plan("ministack", parameters={"HeartbeatIntervalSeconds": "15"}, endpoint=endpoint)
    # what MiniStack cannot create is switched off, as an explicit parameter AWS would take as well
    real = plan(
        "aws",
        parameters={
            "HeartbeatIntervalSeconds": "15",
            "FleetCustomAuthorizer": "false",
            "XRayTracing": "false",
            "MetricMathAlarms": "false",
        },
    )
    build, sam_deploy = emulated.commands()

    assert build[:2] == ["sam", "build"]
    assert emulated.environment["AWS_ENDPOINT_URL"] == endpoint
    assert sam_deploy[sam_deploy.index("--stack-name") + 1] == "lighthouse"
    assert all(capability in sam_deploy for capability in CAPABILITIES)
    assert "HeartbeatIntervalSeconds=15" in sam_deploy
    assert "--resolve-s3" in sam_deploy
    assert emulated.commands() == real.commands()  # same build, same deploy: only the environment differs
    assert real.environment == {}
    assert "FleetCustomAuthorizer=false" in sam_deploy
    assert "FleetCustomAuthorizer=false" not in plan("aws").commands()[1]
    assert "XRayTracing=false" in sam_deploy  # the emulators have no X-Ray
    overridden = plan("localstack", parameters={"FleetTopicRules": "true"}, endpoint=endpoint).commands()[1]
    assert "FleetTopicRules=true" in overridden


def test_unknown_parameters_and_targets_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown template parameters"):
        plan("localstack", parameters={"Nope": "1"}, endpoint="http://127.0.0.1:4566")
    with pytest.raises(ValueError, match="unknown target"):
        plan("gcp")
    with pytest.raises(ValueError, match="needs an endpoint"):
        plan("ministack")


def test_every_mapped_output_exists_in_the_template() -> None:
    assert set(OUTPUT_ENVIRONMENT) <= set(load_template()["Outputs"])


def test_outputs_become_environment_variables() -> None:
    outputs = [{"OutputKey": "EventsTableName", "OutputValue": "t"}, {"OutputKey": "Other", "OutputValue": "x"}]
    assert environment_from_outputs(outputs) == {"LIGHTHOUSE_EVENTS_TABLE": "t"}


def test_dry_run_prints_the_commands(capsys: pytest.CaptureFixture[str], localstack_like: str) -> None:
    assert main(["--endpoint", localstack_like, "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert f"AWS_ENDPOINT_URL={localstack_like}" in printed
    assert "sam deploy" in printed


def test_a_malformed_parameter_or_absent_endpoint_fails_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--param", "HeartbeatIntervalSeconds", "--dry-run"]) == 2
    assert "--param takes KEY=VALUE" in capsys.readouterr().err
    assert main(["--endpoint", "http://127.0.0.1:9", "--dry-run"]) == 2
    assert "no LocalStack or MiniStack answers at http://127.0.0.1:9" in capsys.readouterr().err


def test_the_compose_file_pins_a_community_tag_that_needs_no_token() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "localstack" / "docker-compose.yml").read_text())
    image = compose["services"]["localstack"]["image"]
    name, tag = image.split(":")
    major, minor, patch = (int(part) for part in tag.split("."))
    assert name == "localstack/localstack"
    assert (major, minor, patch) <= (4, 14, 0)
    assert "LOCALSTACK_AUTH_TOKEN" not in compose["services"]["localstack"].get("environment", {})


def test_a_function_url_is_rewritten_to_where_the_emulator_serves_it() -> None:
    stated = "https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws/mcp"
    assert served_function_url("aws", None, stated) == stated
    assert served_function_url("ministack", "http://127.0.0.1:4566", stated) == (
        "http://127.0.0.1:4566/_aws/lambda-url/abcdefghijklmnopqrstuvwxyz012345/mcp"
    )
    assert served_function_url("localstack", "http://localhost:4566", stated) == (
        "http://abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.localhost.localstack.cloud:4566/mcp"
    )
