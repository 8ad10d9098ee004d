"""The README's pipeline commands against `lighthouse up`: deploy the example and run it from the CLI,
then the same over HTTP (registration is for admins)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import Platform, open_session

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "code-review"


def session(platform: Platform, agent_id: str, role: str) -> requests.Session:
    secret = json.loads(platform.cli("agents", "add", agent_id, "--role", role, "--json").stdout)["secret"]
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {open_session(platform, agent_id, secret)}"
    return http


def test_the_example_deploys_and_runs_from_the_cli(platform: Platform) -> None:
    deployed = platform.cli("pipelines", "deploy", str(EXAMPLE))
    assert deployed.returncode == 0, deployed.stderr
    assert deployed.stdout.startswith("code-review v1 (workflow code_review)")

    ran = platform.cli("pipelines", "run", "code-review", "--input", '{"diff": "+ validate size"}', "--wait", "50")
    assert ran.returncode == 0, ran.stderr + ran.stdout
    task = json.loads(ran.stdout)
    assert task["status"] == "COMPLETED"
    assert task["output"] == {"comment": "Please check the size limit before reading the body, and name the constant."}
    assert set(task["stages"]["reviews"]["output"]) == {"security", "style"}


def test_an_invalid_config_is_refused_with_file_path_and_rule(platform: Platform, tmp_path: Path) -> None:
    for name in ("agents.yaml", "tools.yaml", "pipelines.yaml"):
        (tmp_path / name).write_text((EXAMPLE / name).read_text())
    workflow = (
        (EXAMPLE / "workflow.yaml").read_text().replace("{from: style, to: reviews}", "{from: style, to: nowhere}")
    )
    (tmp_path / "workflow.yaml").write_text(workflow)
    refused = platform.cli("pipelines", "deploy", str(tmp_path))
    assert refused.returncode == 1
    assert "workflow.yaml $.workflows[0].edges[4].to: no node 'nowhere' [edge_target_exists]" in refused.stderr


def test_pipelines_and_tasks_over_http(platform: Platform) -> None:
    api = platform.api_url
    admin, agent = session(platform, "e2e-root", "admin"), session(platform, "e2e-dev", "agent")
    files = {p.name: p.read_text() for p in EXAMPLE.glob("*.yaml")}
    assert agent.post(f"{api}/pipelines", json={"files": files}, timeout=30).status_code == 403
    registered = admin.post(f"{api}/pipelines", json={"files": files}, timeout=30)
    assert registered.status_code == 201, registered.text
    broken = admin.post(f"{api}/pipelines", json={"files": {**files, "workflow.yaml": "workflows: [{}]"}}, timeout=30)
    assert broken.status_code == 422
    assert broken.json()["error"]["code"] == "CONFIG_ERROR"
    assert broken.json()["error"]["details"]["problems"][0]["file"] == "workflow.yaml"

    task_body = {"input": {"diff": "x"}, "mode": "review", "tags": ["pull-request"]}
    outsider = agent.post(f"{api}/tasks", json=task_body, timeout=30)
    assert outsider.status_code == 403, outsider.text
    assert agent.put(f"{api}/agents/e2e-dev/projects", json={"projects": ["demo"]}, timeout=30).status_code == 403
    joined = admin.put(f"{api}/agents/e2e-dev/projects", json={"projects": ["demo"]}, timeout=30)
    assert (joined.status_code, joined.json()["projects"]) == (200, ["demo"])
    created = agent.post(f"{api}/tasks", json=task_body, timeout=30)
    assert created.status_code == 201, created.text
    task_id = created.json()["task_id"]
    deadline = time.monotonic() + 50
    task = created.json()
    while task["status"] in ("PENDING", "RUNNING") and time.monotonic() < deadline:
        time.sleep(0.3)
        task = agent.get(f"{api}/tasks/{task_id}", timeout=30).json()
    assert task["status"] == "COMPLETED"
    assert task["routing"]["by"] == "match"
    assert session(platform, "e2e-other", "agent").get(f"{api}/tasks/{task_id}", timeout=30).status_code == 403
    assert agent.post(f"{api}/tasks/{task_id}/cancel", timeout=30).status_code == 409
    assert agent.get(f"{api}/pipelines/code-review", timeout=30).json()["definition"]["StartAt"] == "Run"


def test_connections_from_the_cli_never_show_their_key(platform: Platform) -> None:
    env_key = "sk-e2e-" + "9" * 24
    os.environ["E2E_CONNECTION_KEY"] = env_key
    try:
        added = platform.cli(
            "connections", "add", "e2e-openai", "--provider", "openai", "--base-url", "https://api.openai.test/v1",
            "--api-key-env", "E2E_CONNECTION_KEY",
        )  # fmt: skip
    finally:
        del os.environ["E2E_CONNECTION_KEY"]
    assert added.returncode == 0, added.stderr
    assert env_key not in added.stdout
    listed = platform.cli("connections", "list")
    assert "e2e-openai\topenai\thttps://api.openai.test/v1\tkey" in listed.stdout
    assert env_key not in listed.stdout
    bad = platform.cli("connections", "add", "e2e-bad", "--provider", "openai", "--base-url", "ftp://x")
    assert bad.returncode == 1
    assert "base_url" in bad.stderr
    assert platform.cli("connections", "remove", "e2e-openai").returncode == 0
    assert "e2e-openai" not in platform.cli("connections", "list").stdout
