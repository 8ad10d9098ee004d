"""The console's server side over HTTP, on every target (the embedded cloud and a deployed stack):
its files from the console bucket with their security headers, the browser session and its CSRF
rule, and the executions and overview routes."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import requests

from tests.e2e.conftest import Platform, open_session, wait_for
from tests.helpers import signed_session_body

pytestmark = pytest.mark.e2e


def _values_of(key: str, value: object) -> Iterator[object]:
    if isinstance(value, dict):
        for name, inner in value.items():
            if name == key:
                yield inner
            yield from _values_of(key, inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _values_of(key, inner)


def _agent(platform: Platform, role: str) -> tuple[str, str]:
    agent_id = f"console-http-{role}-{secrets.token_hex(3)}"
    added = platform.cli("agents", "add", agent_id, "--role", role, "--json")
    assert added.returncode == 0, added.stderr
    return agent_id, json.loads(added.stdout)["secret"]


def test_the_console_files_are_served_with_their_security_headers(platform: Platform) -> None:
    page = requests.get(f"{platform.api_url}/console", timeout=30)
    assert page.status_code == 200, page.text[:300]
    assert page.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert '<base href="console/">' in page.text
    bundle = re.search(r'src="(app-[A-Z0-9]+\.js)"', page.text)
    assert bundle, page.text
    script = requests.get(f"{platform.api_url}/console/{bundle.group(1)}", timeout=30)
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert "immutable" in script.headers["Cache-Control"]
    for missing in ("missing.js", "app.exe", "a%5C..%5Cb.js"):
        assert requests.get(f"{platform.api_url}/console/{missing}", timeout=30).status_code in (400, 404), missing


def test_a_browser_session_is_for_humans_and_admins_and_its_cookie_needs_the_csrf_value(platform: Platform) -> None:
    api = platform.api_url
    human, human_secret = _agent(platform, "human")
    agent, agent_secret = _agent(platform, "agent")
    refused = requests.post(f"{api}/console/session", json=signed_session_body(agent, agent_secret), timeout=30)
    assert refused.status_code == 403, refused.text
    assert "Set-Cookie" not in refused.headers
    forged = requests.post(f"{api}/console/session", json=signed_session_body(human, "x" * 64), timeout=30)
    assert forged.status_code == 401
    signed = requests.post(f"{api}/console/session", json=signed_session_body(human, human_secret), timeout=30)
    assert signed.status_code == 201, signed.text
    assert set(signed.json()) == {"agent_id", "role", "expires_at", "csrf"}
    token = signed.cookies["lighthouse_session"]
    pending = f"{api}/elicitation/pending"
    assert requests.get(pending, cookies={"lighthouse_session": token}, timeout=30).status_code == 403
    csrf = {"X-Lighthouse-CSRF": signed.json()["csrf"]}
    assert requests.get(pending, cookies={"lighthouse_session": token}, headers=csrf, timeout=30).status_code == 200
    assert requests.get(pending, cookies={"lighthouse_session": token + "x"}, headers=csrf, timeout=30).status_code in (
        401,
        403,
    )
    out = requests.delete(f"{api}/console/session", cookies={"lighthouse_session": token}, headers=csrf, timeout=30)
    assert out.status_code == 200
    assert "Max-Age=0" in out.headers["Set-Cookie"]


def test_what_an_agent_answered_is_listed_newest_first_with_its_signature_checked(platform: Platform) -> None:
    api = platform.api_url
    asker_id, asker_secret = _agent(platform, "agent")
    human_id, human_secret = _agent(platform, "human")
    asker, human = requests.Session(), requests.Session()
    asker.headers["Authorization"] = f"Bearer {open_session(platform, asker_id, asker_secret)}"
    human.headers["Authorization"] = f"Bearer {open_session(platform, human_id, human_secret)}"
    answered = []
    for action in ("accept", "decline"):
        created = asker.post(
            f"{api}/elicitation/create",
            json={"to_agent": human_id, "message": action, "schema": {"type": "object"}, "timeout_seconds": 300},
            timeout=30,
        )
        assert created.status_code == 201, created.text
        elicitation_id = created.json()["elicitation_id"]
        body = {"elicitation_id": elicitation_id, "action": action, "nonce": secrets.token_hex(16)}
        responded = human.post(
            f"{api}/elicitation/respond", json={**body, **({"data": {}} if action == "accept" else {})}
        )
        assert responded.status_code == 200, responded.text
        answered.append(elicitation_id)
    page = human.get(f"{api}/elicitation/answered", timeout=30).json()["elicitations"]
    assert [(e["elicitation_id"], e["status"], e["signature_valid"]) for e in page[:2]] == [
        (answered[1], "declined", True),
        (answered[0], "accepted", True),
    ]
    assert "salt" not in page[0]
    assert asker.get(f"{api}/elicitation/answered", timeout=30).json()["elicitations"] == []


def test_an_elicitation_execution_is_drawn_with_its_meaning(platform: Platform) -> None:
    api = platform.api_url
    admin_id, admin_secret = _agent(platform, "admin")
    asker_id, asker_secret = _agent(platform, "agent")
    target_id, _ = _agent(platform, "human")
    asker = requests.Session()
    asker.headers["Authorization"] = f"Bearer {open_session(platform, asker_id, asker_secret)}"
    created = asker.post(
        f"{api}/elicitation/create",
        json={"to_agent": target_id, "message": "ok?", "schema": {"type": "object"}, "timeout_seconds": 300},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    elicitation_id = created.json()["elicitation_id"]
    admin = requests.Session()
    admin.headers["Authorization"] = f"Bearer {open_session(platform, admin_id, admin_secret)}"
    assert asker.get(f"{api}/executions", timeout=30).status_code == 403

    def listed() -> dict[str, object] | None:
        page = admin.get(f"{api}/executions?kind=elicitation&limit=200", timeout=30).json()
        return next((e for e in page["executions"] if e["name"] == elicitation_id), None)

    execution = wait_for(listed, timeout=30)
    assert execution["link"]["api_path"] == f"/elicitation/status/{elicitation_id}"

    def waiting() -> dict[str, object] | None:
        detail = admin.get(f"{api}/executions/{quote(str(execution['execution_arn']), safe='')}", timeout=30).json()
        return detail if any(n["status"] == "waiting" for n in detail["nodes"]) else None

    detail = wait_for(waiting, timeout=30)
    assert detail["history"][0]["type"] == "ExecutionStarted"
    # The wait's task token goes to the lifecycle function (in TaskScheduled's parameters, where the
    # target's history shows them; MiniStack's does not): wherever it shows, it is redacted.
    tokens = list(_values_of("task_token", detail))
    assert all(value == "[redacted]" for value in tokens), tokens
    if platform.process is not None:
        assert tokens
    bad = admin.get(f"{api}/executions/not-an-arn", timeout=30)
    assert bad.status_code == 400
    ghost = "arn:aws:states:us-east-1:000000000000:execution:ghost:ghost"
    assert admin.get(f"{api}/executions/{quote(ghost, safe='')}", timeout=30).status_code == 404
    decided = asker.post(
        f"{api}/validate",
        json={"tool_name": "Bash", "tool_input": {"command": "rm -rf /"}, "context": {"cwd": "/home/a/project"}},
        timeout=30,
    )
    assert decided.json()["decision"] == "blocked", decided.text
    figures = {f["name"]: f for f in admin.get(f"{api}/overview", timeout=30).json()["figures"]}
    assert figures["elicitation expiry rate"]["alarm"] == "ElicitationExpiryRateAlarm"
    # Every agent's decisions (the audit's `*` listing) feed the gate's latency figure.
    assert figures["gate decision latency p99"]["value"] is not None
    audit = admin.get(f"{api}/validation/audit?agent=*", timeout=30).json()["entries"]
    assert decided.json()["request_id"] in {entry["request_id"] for entry in audit}
    assert asker.get(f"{api}/validation/audit?agent=*", timeout=30).status_code == 403
    assert requests.get(f"{api}/health", timeout=30).status_code == 200  # the refusals above broke nothing
