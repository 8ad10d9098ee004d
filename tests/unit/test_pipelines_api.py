"""The pipeline routes' bad-input paths through Chalice's test client: nothing is stored on a refusal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

from lighthouse.composition import Components
from lighthouse.pipelines.bundle import load
from lighthouse.pipelines.manifests import MAX_MANIFEST_BYTES, ConfigInvalid
from tests.conftest import Provisioned
from tests.helpers import api_app, signed_session_body


@pytest.fixture
def api(provisioned: Provisioned) -> Iterator[Client]:
    with Client(api_app()) as client:
        yield client


def login(parts: Components, api: Client, agent_id: str, role: str = "agent") -> str:
    secret = parts.agents.register(agent_id, role).secret  # type: ignore[arg-type]
    return str(api.http.post("/sessions", body=json.dumps(signed_session_body(agent_id, secret))).json_body["token"])


def call(api: Client, method: str, path: str, token: str, body: Any = None) -> Any:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    return getattr(api.http, method.lower())(path, headers=headers, body=None if body is None else json.dumps(body))


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"input": {}, "pipeline": "ghost"}, "no pipeline 'ghost'"),
        ({"input": {}, "mode": "review"}, "no pipeline matches"),
        ({"input": {}, "overrides": {"yolo": True}}, "overrides.yolo"),
        ({"pipeline": "x", "extra": 1}, "extra"),
    ],
)
def test_bad_task_requests_are_422_and_create_nothing(parts: Components, api: Client, body: Any, text: str) -> None:
    token = login(parts, api, "dev")
    response = call(api, "POST", "/tasks", token, body)
    assert response.status_code == 422
    assert text in json.dumps(response.json_body)
    assert parts.events.load("pipeline-index") == []


def test_unknown_tasks_and_pipelines_are_404_malformed_ids_400_and_bad_waits_422(
    parts: Components, api: Client
) -> None:
    token = login(parts, api, "dev")
    unknown = "0123abcd" * 4
    assert call(api, "GET", f"/tasks/{unknown}", token).status_code == 404
    assert call(api, "POST", f"/tasks/{unknown}/cancel", token).status_code == 404
    assert call(api, "GET", "/pipelines/ghost", token).status_code == 404
    assert call(api, "GET", f"/tasks/{unknown}?wait=99", token).status_code == 422
    malformed = call(api, "GET", "/tasks/0123abcd", token)
    assert (malformed.status_code, malformed.json_body["error"]["code"]) == (400, "INVALID_ID")
    assert call(api, "POST", "/tasks/..%2F..%2Fx/cancel", token).status_code == 400


def test_registration_needs_an_admin_and_valid_files(parts: Components, api: Client) -> None:
    agent, admin = login(parts, api, "dev"), login(parts, api, "root", "admin")
    assert call(api, "POST", "/pipelines", agent, {"files": {}}).status_code == 403
    refused = call(api, "POST", "/pipelines", admin, {"files": {"agents.yaml": "agents: []"}})
    assert refused.status_code == 422
    rules = {p["rule"] for p in refused.json_body["error"]["details"]["problems"]}
    assert {"required_file", "minItems"} <= rules
    assert parts.events.load("pipeline-index") == []


def test_memory_writes_are_checked(parts: Components, api: Client) -> None:
    token, admin = login(parts, api, "dev"), login(parts, api, "root", "admin")
    assert call(api, "POST", "/memory", token, {"store": "docs", "scope": "project", "text": "x"}).status_code == 422
    assert (
        call(api, "POST", "/memory", token, {"store": "docs", "scope": "task", "project": "p", "text": "x"}).status_code
        == 422
    )
    assert call(api, "POST", "/memory", token, {"store": "docs", "scope": "global", "text": ""}).status_code == 422
    body = {"store": "docs", "scope": "global", "text": "be kind", "importance": 0.9}
    assert call(api, "POST", "/memory", token, body).status_code == 403
    stored = call(api, "POST", "/memory", admin, body)
    assert stored.status_code == 201
    page = call(api, "GET", "/memory?store=docs&scope=global", token).json_body
    assert [item["text"] for item in page["items"]] == ["be kind"]
    assert call(api, "GET", "/memory", token).status_code == 400


def test_an_oversized_manifest_is_a_problem_not_a_crash() -> None:
    with pytest.raises(ConfigInvalid) as refused:
        load(
            {"agents.yaml": "#" * (MAX_MANIFEST_BYTES + 1), "tools.yaml": "", "workflow.yaml": "", "pipelines.yaml": ""}
        )
    assert {k: v for k, v in refused.value.details["problems"][0].items() if k != "message"} == {
        "file": "agents.yaml",
        "path": "$",
        "rule": "max_size",
    }
