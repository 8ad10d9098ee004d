"""`lighthouse up` as a subprocess, driven over HTTP as a new agent would, and with boto3 against the
AWS endpoint it prints."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import LIGHTHOUSE, Platform, open_session, wait_for

pytestmark = pytest.mark.e2e


def test_it_prints_both_endpoints_and_reports_healthy(platform: Platform) -> None:
    health = requests.get(f"{platform.api_url}/health", timeout=10)

    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert json.loads(platform.state_file.read_text())["api_url"] == platform.api_url


def test_a_new_agent_registers_signs_in_heartbeats_and_is_listed(platform: Platform) -> None:
    added = platform.cli("agents", "add", "e2e-alice", "--role", "expert", "--json")
    assert added.returncode == 0, added.stderr
    secret = json.loads(added.stdout)["secret"]

    token = open_session(platform, "e2e-alice", secret)
    headers = {"Authorization": f"Bearer {token}"}
    beat = requests.post(f"{platform.api_url}/agents/heartbeat", json={"status": "busy"}, headers=headers, timeout=10)
    assert beat.status_code == 200, beat.text

    def online() -> dict[str, Any] | None:
        view = requests.get(f"{platform.api_url}/agents/e2e-alice", headers=headers, timeout=10).json()
        return view if view.get("presence") == "online" else None

    view = wait_for(online)
    assert (view["role"], view["status"]) == ("expert", "busy")
    listed = requests.get(f"{platform.api_url}/agents", headers=headers, timeout=10).json()["agents"]
    assert "e2e-alice" in {agent["agent_id"] for agent in listed}


def test_the_session_command_prints_a_working_token(platform: Platform) -> None:
    secret = json.loads(platform.cli("agents", "add", "e2e-bob", "--json").stdout)["secret"]

    session = platform.cli("session", "e2e-bob", "--secret", secret)

    assert session.returncode == 0, session.stderr
    token = session.stdout.strip()
    response = requests.get(f"{platform.api_url}/agents", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200


def test_bad_requests_get_precise_errors(platform: Platform) -> None:
    no_token = requests.get(f"{platform.api_url}/agents", timeout=10)
    bad_signature = requests.post(
        f"{platform.api_url}/sessions",
        json={
            "agent_id": "e2e-alice",
            "timestamp": int(time.time()),
            "nonce": "ab" * 16,
            "signature": "0" * 64,
        },
        timeout=10,
    )
    bad_body = requests.post(f"{platform.api_url}/sessions", data="{oops", timeout=10)

    assert (no_token.status_code, no_token.json()["error"]["code"]) == (401, "UNAUTHENTICATED")
    assert bad_signature.status_code == 401
    assert bad_body.status_code == 400


def test_registering_an_existing_agent_fails_clearly(platform: Platform) -> None:
    platform.cli("agents", "add", "e2e-carol")

    again = platform.cli("agents", "add", "e2e-carol")

    assert again.returncode == 1
    assert "already registered" in again.stderr


def test_up_and_deploy_write_an_operator_credential_only_its_owner_can_read(platform: Platform) -> None:
    credential = platform.state_file.parent / "operator.json"

    assert stat.S_IMODE(credential.stat().st_mode) == 0o600
    operator = json.loads(credential.read_text())
    token = open_session(platform, operator["agent_id"], operator["secret"])
    made = requests.post(
        f"{platform.api_url}/agents",
        json={"agent_id": "op-made"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert made.status_code == 201
    assert made.json()["role"] == "agent"


def test_admin_commands_go_through_the_api_and_its_authorization(platform: Platform) -> None:
    plain = json.loads(platform.cli("agents", "add", "e2e-erin", "--json").stdout)
    environment = {**os.environ, "LIGHTHOUSE_ADMIN_AGENT_ID": "e2e-erin", "LIGHTHOUSE_ADMIN_SECRET": plain["secret"]}

    refused = subprocess.run(
        [LIGHTHOUSE, "--state-file", str(platform.state_file), "agents", "add", "e2e-mallory", "--role", "admin"],
        capture_output=True, text=True, timeout=60, env=environment, check=False,
    )  # fmt: skip
    listed = platform.cli("agents", "list")

    assert refused.returncode == 1
    assert "403 FORBIDDEN" in refused.stderr
    assert "e2e-mallory" not in listed.stdout
    assert "e2e-erin\tagent" in listed.stdout


def test_an_admin_command_without_a_credential_says_how_to_get_one(platform: Platform, tmp_path: Path) -> None:
    elsewhere = subprocess.run(
        [LIGHTHOUSE, "--state-file", str(tmp_path / "local.json"), "agents", "list"],
        capture_output=True, text=True, timeout=60, check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("LIGHTHOUSE_")},
    )  # fmt: skip

    assert elsewhere.returncode != 0
    assert "no admin credential" in elsewhere.stderr


def test_the_operator_id_cannot_be_registered(platform: Platform) -> None:
    taken = platform.cli("agents", "add", "lighthouse-operator")

    assert taken.returncode == 1
    assert "built-in operator" in taken.stderr


def test_boto3_against_the_printed_endpoint_sees_the_template_and_feeds_the_queue(platform: Platform) -> None:
    resources = platform.environment
    tables = platform.aws("dynamodb").list_tables()["TableNames"]
    assert resources["LIGHTHOUSE_EVENTS_TABLE"] in tables
    secret = json.loads(platform.cli("agents", "add", "e2e-dave", "--json").stdout)["secret"]
    token = open_session(platform, "e2e-dave", secret)
    sqs = platform.aws("sqs")
    queue_url = resources["LIGHTHOUSE_PRESENCE_QUEUE_URL"]

    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"token": token, "status": "idle"}))

    headers = {"Authorization": f"Bearer {token}"}
    wait_for(
        lambda: (
            requests.get(f"{platform.api_url}/agents/e2e-dave", headers=headers, timeout=10).json().get("presence")
            == "online"
        )
    )


def test_a_project_turns_a_deny_class_into_an_allow_with_the_policy_cli(platform: Platform, tmp_path: Path) -> None:
    secret = json.loads(platform.cli("agents", "add", "e2e-pusher", "--json").stdout)["secret"]
    headers = {"Authorization": f"Bearer {open_session(platform, 'e2e-pusher', secret)}"}
    push = {
        "tool_name": "Bash",
        "tool_input": {"command": "git push --force origin feature"},
        "context": {"cwd": "/srv/p"},
    }

    def decision() -> str:
        response = requests.post(f"{platform.api_url}/validate", json=push, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        return str(response.json()["decision"])

    assert decision() == "blocked"
    shipped = platform.cli("policy", "defaults").stdout
    assert "permit-everyday-work" in shipped
    team = re.sub(r'\s*"git_push_force",', "", shipped) + (
        '\n@id("team-allows-force-push")\n'
        'permit (principal, action, resource) when { context.matched_rules.contains("git_push_force") };\n'
    )
    (tmp_path / "team.cedar").write_text(team)
    (tmp_path / "broken.cedar").write_text("permit (principal, action, resource) when { context.no_such_fact };")

    broken = platform.cli("policy", "set", str(tmp_path / "broken.cedar"))
    replaced = platform.cli("policy", "set", str(tmp_path / "team.cedar"))

    assert broken.returncode == 1
    assert "no_such_fact" in broken.stderr
    assert replaced.returncode == 0, replaced.stderr
    assert "team-allows-force-push" in platform.cli("policy", "show").stdout
    wait_for(lambda: decision() == "approved", timeout=30)  # the gate reloads policies every few seconds
    (tmp_path / "shipped.cedar").write_text(shipped)
    assert platform.cli("policy", "set", str(tmp_path / "shipped.cedar")).returncode == 0
    wait_for(lambda: decision() == "blocked", timeout=30)


# Last: it stops the module's platform.
@pytest.mark.embedded_only("stops the `lighthouse up` process")
def test_ctrl_c_shuts_down_cleanly(platform: Platform) -> None:
    assert platform.process is not None
    # A burst of signals (Ctrl+C, then the supervisor's SIGTERM) once deadlocked the handler.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGINT, signal.SIGTERM):
        platform.process.send_signal(signum)

    assert platform.process.wait(timeout=30) == 0
    time.sleep(0.2)
    assert "Stopped." in "".join(platform.output)
    assert not platform.state_file.exists()
    assert not (platform.state_file.parent / "operator.json").exists()
    assert not (platform.state_file.parent / "operator.session.json").exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{platform.api_url}/health", timeout=2)
