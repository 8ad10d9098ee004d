"""The validation routes through Chalice's test client: bad input, authorization, rate limits, the
audit trail, policy replacement and the hook route's deny-on-any-error contract."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from lighthouse.composition import Components
from tests.conftest import Provisioned
from tests.helpers import api_app, signed_session_body


@pytest.fixture
def api(provisioned: Provisioned) -> Iterator[Client]:
    with Client(api_app(validations_per_minute=60, validation_burst=5, max_body_bytes=4096)) as client:
        yield client


def login(parts: Components, api: Client, agent_id: str, role: str = "agent") -> str:
    secret = parts.agents.register(agent_id, role).secret  # type: ignore[arg-type]
    response = api.http.post("/sessions", body=json.dumps(signed_session_body(agent_id, secret)))
    assert response.status_code == 201
    return str(response.json_body["token"])


def call(api: Client, method: str, path: str, token: str | None, body: Any = None, raw: str | None = None) -> Any:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    return getattr(api.http, method.lower())(path, headers=headers, body=data)


def test_validate_decides_and_records_both_events(parts: Components, api: Client, tmp_path: Path) -> None:
    token = login(parts, api, "dev")
    response = call(
        api,
        "POST",
        "/validate",
        token,
        {"tool_name": "Bash", "tool_input": {"command": "ls"}, "context": {"cwd": str(tmp_path)}},
    )
    assert response.status_code == 200
    body = response.json_body
    assert body["decision"] == "approved"
    assert body["status"] == "decided"
    assert 0 <= body["confidence"] <= 1
    events = parts.events.load(f"validation#{body['request_id']}")
    assert [e.type for e in events] == ["VALIDATION_REQUESTED", "VALIDATION_COMPLETED"]
    assert events[0].event.gate.matched_rules == body["matched_rules"]  # type: ignore[attr-defined]

    fetched = call(api, "GET", f"/validate/{body['request_id']}", token)
    assert fetched.json_body["decision"] == "approved"


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"tool_input": {}}, 422, "tool_name"),
        ({"tool_name": "Bash", "tool_input": {}}, 422, "tool_input.command"),
        ({"tool_name": "Bash", "tool_input": {"command": "ls"}, "context": {"cwd": "relative"}}, 422, "absolute path"),
        ({"tool_name": "Bash", "tool_input": {"command": "ls"}, "context": {"env": "HOME=/x"}}, 422, "context.env"),
        ({"tool_name": "Bash", "tool_input": {"command": "ls"}, "context": {"env": {"HOME": 1}}}, 422, "context.env"),
        ({"tool_name": "Bash", "tool_input": {"command": "ls"}, "context": {"env": ["TMPDIR"]}}, 422, "context.env"),
        ({"tool_name": "bad name!", "tool_input": {}}, 422, "tool_name"),
        ({"tool_name": "Bash", "tool_input": {"command": "ls"}, "extra": 1}, 422, "extra"),
    ],
)
def test_bad_requests_are_refused_and_nothing_is_recorded(
    parts: Components, api: Client, body: Any, status: int, text: str
) -> None:
    token = login(parts, api, "dev")
    response = call(api, "POST", "/validate", token, body)
    assert response.status_code == status
    assert text in json.dumps(response.json_body)
    assert parts.read_models.list("validation-audit#dev", None)[0] == []


def test_the_requests_tmpdir_is_where_rm_rf_is_everyday_if_it_is_a_temp_dir(
    parts: Components, api: Client, tmp_path: Path
) -> None:
    token = login(parts, api, "dev")
    project = tmp_path / "project"

    def decide(env: dict[str, str]) -> str:
        context = {"cwd": str(project), "env": env}
        body = {"tool_name": "Bash", "tool_input": {"command": "rm -rf $TMPDIR/cache"}, "context": context}
        return str(call(api, "POST", "/validate", token, body).json_body["decision"])

    assert decide({"TMPDIR": "/var/folders/xy/T"}) == "approved"  # macOS
    assert decide({"TMPDIR": "scratch"}) == "approved"  # not absolute: ignored, so $TMPDIR is /tmp
    # An agent cannot make deleting anywhere everyday by declaring it its temp dir (this API allows an
    # agent 5 validations a minute: the gate's own tests try more directories).
    for claimed in ("/", "/home/dev"):
        assert decide({"TMPDIR": claimed}) == "blocked", claimed


def test_malformed_json_is_400_and_unauthenticated_is_401(parts: Components, api: Client) -> None:
    token = login(parts, api, "dev")
    assert call(api, "POST", "/validate", token, raw="{nope").status_code == 400
    assert call(api, "POST", "/validate", None, {"tool_name": "Bash"}).status_code == 401


def test_over_the_limit_is_429_and_the_hook_answers_deny(parts: Components, api: Client, tmp_path: Path) -> None:
    token = login(parts, api, "busy")
    body = {"tool_name": "Bash", "tool_input": {"command": "ls"}, "context": {"cwd": str(tmp_path)}}
    statuses = [call(api, "POST", "/validate", token, body).status_code for _ in range(5)]
    limited = call(api, "POST", "/validate", token, body)
    assert statuses == [200] * 5
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1

    hook_token = call(api, "POST", "/hooks/token", token).json_body["hook_token"]
    hook = call(
        api,
        "POST",
        "/hooks/claude-code/pre-tool-use",
        hook_token,
        {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "ls"}, "cwd": str(tmp_path)},
    )
    assert hook.status_code == 200
    decision = hook.json_body["hookSpecificOutput"]
    assert decision["permissionDecision"] == "deny"
    assert "RATE_LIMITED" in decision["permissionDecisionReason"]


def test_the_hook_route_denies_an_oversized_body_instead_of_erroring(api: Client) -> None:
    response = call(api, "POST", "/hooks/claude-code/pre-tool-use", None, raw="{" + " " * 8000 + "}")
    assert response.status_code == 200
    assert response.json_body["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert response.headers["X-Lighthouse-Error"] == "PAYLOAD_TOO_LARGE"


def test_results_are_private_to_the_requester_experts_and_admins(
    parts: Components, api: Client, tmp_path: Path
) -> None:
    owner, other, expert = (
        login(parts, api, "owner"),
        login(parts, api, "other"),
        login(parts, api, "reviewer", "expert"),
    )
    body = {"tool_name": "Bash", "tool_input": {"command": "ls"}, "context": {"cwd": str(tmp_path)}}
    request_id = call(api, "POST", "/validate", owner, body).json_body["request_id"]
    assert call(api, "GET", f"/validate/{request_id}", other).status_code == 403
    assert call(api, "GET", f"/validate/{request_id}", expert).status_code == 200
    assert call(api, "GET", "/validate/" + "0123" * 8, owner).status_code == 404
    assert call(api, "GET", "/validate/0123", owner).status_code == 400
    assert call(api, "GET", f"/validate/{request_id}?wait=99", owner).status_code == 422


def test_the_audit_trail_lists_an_agents_requests_newest_first(parts: Components, api: Client, tmp_path: Path) -> None:
    token, admin = login(parts, api, "dev"), login(parts, api, "root", "admin")
    ids = []
    for command in ("ls", "rm -rf /", "docker run --rm alpine true"):
        body = {"tool_name": "Bash", "tool_input": {"command": command}, "context": {"cwd": str(tmp_path)}}
        ids.append(call(api, "POST", "/validate", token, body).json_body["request_id"])
    parts.projector.project(e for request_id in ids for e in parts.events.load(f"validation#{request_id}"))
    entries = call(api, "GET", "/validation/audit", token).json_body["entries"]
    assert [e["request_id"] for e in entries] == ids[::-1]
    assert [e["decision"] for e in entries] == ["escalate", "blocked", "approved"]
    assert call(api, "GET", "/validation/audit?agent=root", token).status_code == 403
    assert len(call(api, "GET", "/validation/audit?agent=dev", admin).json_body["entries"]) == 3


def test_only_admins_replace_policies_and_only_valid_ones(parts: Components, api: Client, tmp_path: Path) -> None:
    agent, admin = login(parts, api, "dev"), login(parts, api, "root", "admin")
    current = call(api, "GET", "/validation/policies", agent).json_body
    assert current["version"] == 0
    assert "namespace Lighthouse" in current["schema"]
    stricter = (
        current["policies"] + '\n@id("no-ls")\nforbid (principal, action, resource) when { context.read_only };\n'
    )

    assert call(api, "PUT", "/validation/policies", agent, {"policies": stricter}).status_code == 403
    invalid = call(
        api,
        "PUT",
        "/validation/policies",
        admin,
        {"policies": "forbid (principal, action, resource) when { context.x };"},
    )
    assert invalid.status_code == 422
    assert invalid.json_body["error"]["details"]["errors"]
    replaced = call(api, "PUT", "/validation/policies", admin, {"policies": stricter})
    assert replaced.status_code == 200
    assert replaced.json_body["version"] == 1

    body = {"tool_name": "Bash", "tool_input": {"command": "ls"}, "context": {"cwd": str(tmp_path)}}
    decision = call(api, "POST", "/validate", agent, body).json_body
    assert decision["decision"] == "blocked"
    assert "policy:no-ls" in decision["matched_rules"]
