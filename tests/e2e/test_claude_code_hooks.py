"""Claude Code's PreToolUse hook against `lighthouse up`, in both forms: the http hook (POST of the
hook input, hook token in the headers) and the command hook (`lighthouse hook claude-code`, hook
input on stdin). Payloads are shaped exactly as Claude Code sends them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import LIGHTHOUSE, Platform

pytestmark = pytest.mark.e2e


def claude_code_input(tool_name: str, tool_input: dict[str, Any], cwd: Path) -> dict[str, Any]:
    """PreToolUse hook input as Claude Code writes it (plus a field newer versions add)."""
    return {
        "session_id": "00893aaf-19fa-41d2-8238-13269b9b3ca0",
        "transcript_path": f"{cwd}/.claude/projects/demo/00893aaf-19fa-41d2-8238-13269b9b3ca0.jsonl",
        "cwd": str(cwd),
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": tool_name,
        "tool_input": tool_input,
        "tool_use_id": "toolu_01ABC123DEF456",
        "agent_type": "main",
    }


@pytest.fixture(scope="module")
def hook_token(platform: Platform) -> str:
    secret = json.loads(platform.cli("agents", "add", "e2e-coder", "--json").stdout)["secret"]
    issued = platform.cli("hook", "token", "e2e-coder", "--secret", secret)
    assert issued.returncode == 0, issued.stderr
    return issued.stdout.strip()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    return tmp_path


def http_hook(platform: Platform, body: Any, headers: dict[str, str]) -> dict[str, Any]:
    response = requests.post(
        f"{platform.api_url}/hooks/claude-code/pre-tool-use",
        data=body if isinstance(body, str) else json.dumps(body),
        headers={"Content-Type": "application/json", **headers},
        timeout=30,
    )
    assert response.status_code == 200, response.text  # Claude Code ignores any other status
    return dict(response.json()["hookSpecificOutput"])


def command_hook(platform: Platform, stdin: str, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIGHTHOUSE_HOOK_TOKEN": token}
    return subprocess.run(
        [LIGHTHOUSE, "hook", "claude-code", "--api-url", platform.api_url, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_the_http_hook_denies_rm_rf_root_and_allows_ls(platform: Platform, hook_token: str, project: Path) -> None:
    auth = {"Authorization": f"Bearer {hook_token}"}
    denied = http_hook(platform, claude_code_input("Bash", {"command": "rm -rf /", "description": "x"}, project), auth)
    assert denied["hookEventName"] == "PreToolUse"
    assert denied["permissionDecision"] == "deny"
    assert "recursive_delete_root_or_home" in denied["permissionDecisionReason"]

    allowed = http_hook(platform, claude_code_input("Bash", {"command": "ls -la"}, project), auth)
    assert allowed["permissionDecision"] == "allow"
    # The token may also sit in its own header.
    also = http_hook(
        platform,
        claude_code_input("Read", {"file_path": str(project / "src")}, project),
        {"X-Lighthouse-Hook-Token": hook_token},
    )
    assert also["permissionDecision"] == "allow"


def test_the_command_hook_denies_rm_rf_root_with_exit_2_and_allows_ls(
    platform: Platform, hook_token: str, project: Path
) -> None:
    denied = command_hook(platform, json.dumps(claude_code_input("Bash", {"command": "rm -rf /"}, project)), hook_token)
    assert denied.returncode == 2
    assert denied.stdout == ""
    assert "recursive_delete_root_or_home" in denied.stderr

    allowed = command_hook(platform, json.dumps(claude_code_input("Bash", {"command": "ls -la"}, project)), hook_token)
    assert allowed.returncode == 0, allowed.stderr
    output = json.loads(allowed.stdout)["hookSpecificOutput"]
    assert output["permissionDecision"] == "allow"


def test_an_unknown_command_asks_the_user(platform: Platform, hook_token: str, project: Path) -> None:
    answer = http_hook(
        platform,
        claude_code_input("Bash", {"command": "docker run --rm alpine true"}, project),
        {"Authorization": f"Bearer {hook_token}"},
    )
    assert answer["permissionDecision"] == "ask"


def test_a_deny_class_is_denied_with_its_rule_and_a_safer_alternative(
    platform: Platform, hook_token: str, project: Path
) -> None:
    answer = http_hook(
        platform,
        claude_code_input("Bash", {"command": "bash -c 'git reset --hard'"}, project),
        {"Authorization": f"Bearer {hook_token}"},
    )
    assert answer["permissionDecision"] == "deny"
    assert "git_reset_hard" in answer["permissionDecisionReason"]
    assert "git stash" in answer["permissionDecisionReason"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "not valid JSON"),
        ({"hook_event_name": "PreToolUse", "tool_name": "Bash"}, "tool_input"),
        ({"hook_event_name": "PostToolUse", "tool_name": "Bash", "tool_input": {"command": "ls"}}, "hook_event_name"),
        ({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {}}, "tool_input.command"),
    ],
)
def test_malformed_hook_input_is_denied_with_the_reason(
    platform: Platform, hook_token: str, body: Any, reason: str
) -> None:
    answer = http_hook(platform, body, {"Authorization": f"Bearer {hook_token}"})
    assert answer["permissionDecision"] == "deny"
    assert reason in answer["permissionDecisionReason"]
    stdin = body if isinstance(body, str) else json.dumps(body)
    assert command_hook(platform, stdin, hook_token).returncode == 2


def test_without_a_valid_hook_token_everything_is_denied(platform: Platform, project: Path) -> None:
    payload = claude_code_input("Bash", {"command": "ls -la"}, project)
    for headers in ({}, {"Authorization": "Bearer lh1.forged.token"}):
        answer = http_hook(platform, payload, headers)
        assert answer["permissionDecision"] == "deny"
        assert "UNAUTHENTICATED" in answer["permissionDecisionReason"]


def test_a_session_token_is_not_a_hook_token(platform: Platform, project: Path) -> None:
    secret = json.loads(platform.cli("agents", "add", "e2e-sessioner", "--json").stdout)["secret"]
    session = platform.cli("session", "e2e-sessioner", "--secret", secret).stdout.strip()
    answer = http_hook(
        platform, claude_code_input("Bash", {"command": "ls"}, project), {"Authorization": f"Bearer {session}"}
    )
    assert answer["permissionDecision"] == "deny"


def test_the_command_hook_fails_closed_when_lighthouse_is_unreachable(hook_token: str, project: Path) -> None:
    stdin = json.dumps(claude_code_input("Bash", {"command": "ls"}, project))
    env = {**os.environ, "LIGHTHOUSE_HOOK_TOKEN": hook_token}
    unreachable = [LIGHTHOUSE, "hook", "claude-code", "--api-url", "http://127.0.0.1:9", "--timeout", "2"]
    closed = subprocess.run(unreachable, input=stdin, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert closed.returncode == 2
    assert "unreachable" in closed.stderr
    asked = subprocess.run(
        [*unreachable, "--on-unreachable", "ask"],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert asked.returncode == 0
    assert json.loads(asked.stdout)["hookSpecificOutput"]["permissionDecision"] == "ask"


def test_a_hook_token_revoked_with_the_cli_is_denied_by_both_hooks(platform: Platform, project: Path) -> None:
    # GIVEN a hook token that allows `ls`
    secret = json.loads(platform.cli("agents", "add", "e2e-revoker", "--json").stdout)["secret"]
    token = platform.cli("hook", "token", "e2e-revoker", "--secret", secret).stdout.strip()
    ls = claude_code_input("Bash", {"command": "ls -la"}, project)
    assert http_hook(platform, ls, {"Authorization": f"Bearer {token}"})["permissionDecision"] == "allow"
    # WHEN its owner revokes it with the CLI
    revoked = platform.cli("hook", "revoke", token, "--agent-id", "e2e-revoker", "--secret", secret)
    assert revoked.returncode == 0, revoked.stderr
    # THEN the http hook denies with the reason, and so does the command hook
    denied = http_hook(platform, ls, {"Authorization": f"Bearer {token}"})
    assert denied["permissionDecision"] == "deny"
    assert "revoked" in denied["permissionDecisionReason"]
    command = command_hook(platform, json.dumps(ls), token)
    assert command.returncode == 2
    assert "revoked" in command.stderr
    again = platform.cli("hook", "revoke", token, "--agent-id", "e2e-revoker", "--secret", secret)
    assert again.returncode == 1
    assert "409" in again.stderr
