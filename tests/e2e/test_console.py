"""The web console in real headless Chromium (Debian's `chromium`, driven by Playwright for Python)
against `lighthouse up`: sign in, answer an elicitation through the generated form, watch a pipeline
execution turn green, cancel a task, edit the Cedar policies, send a fleet refresh. Every page is
checked with axe-core and saved as a screenshot (tests/artifacts/console/); the session is checked
against cross-site use, the Content-Security-Policy against inline scripts, and the page and the
browser's storage for secrets."""

from __future__ import annotations

import http.server
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.e2e.conftest import Platform, open_session, wait_for

pytestmark = pytest.mark.embedded_only("the browser drives the console `lighthouse up` serves (one per test module)")

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("LIGHTHOUSE_CHROMIUM", "/usr/bin/chromium")
AXE = ROOT / "console" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "tests" / "artifacts" / "console"
EXAMPLE = ROOT / "examples" / "code-review"
ANSWER_SCHEMA = {
    "type": "object",
    "title": "Release approval",
    "required": ["approver", "risk", "window"],
    "properties": {
        "approver": {"type": "string", "title": "Approver", "minLength": 3},
        "risk": {"type": "string", "title": "Risk", "enum": ["low", "medium", "high"]},
        "window": {"type": "integer", "title": "Window (hours)", "minimum": 1, "maximum": 48},
        "rollback": {"type": "boolean", "title": "Rollback planned"},
        "owners": {"type": "array", "title": "Owners", "items": {"type": "string"}},
        "contact": {
            "type": "object",
            "title": "Contact",
            "properties": {"email": {"type": "string", "title": "Email"}},
        },
    },
}


class Agent:
    def __init__(self, platform: Platform, agent_id: str, role: str) -> None:
        added = platform.cli("agents", "add", agent_id, "--role", role, "--json")
        assert added.returncode == 0, added.stderr
        self.agent_id, self.secret = agent_id, json.loads(added.stdout)["secret"]
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {open_session(platform, agent_id, self.secret)}"


@pytest.fixture(scope="module")
def people(platform: Platform) -> dict[str, Agent]:
    suffix = secrets.token_hex(3)
    return {
        "admin": Agent(platform, f"console-admin-{suffix}", "admin"),
        "human": Agent(platform, f"console-human-{suffix}", "human"),
        "asker": Agent(platform, f"console-asker-{suffix}", "agent"),
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context(viewport={"width": 1280, "height": 800})
    yield opened
    opened.close()


def console_url(platform: Platform) -> str:
    state = json.loads(platform.state_file.read_text())
    return str(state["console_url"])


def sign_in(page: Page, platform: Platform, agent: Agent) -> None:
    page.goto(console_url(platform))
    page.get_by_label("Agent id").fill(agent.agent_id)
    page.get_by_label("Secret").fill(agent.secret)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"{agent.agent_id} (")).to_be_visible()


def audited(page: Page, name: str) -> None:
    """axe-core on the page as it is: no serious or critical violation; then a screenshot."""
    page.evaluate(AXE.read_text())  # evaluated by the DevTools protocol, not a <script>: the CSP stays on
    violations = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)}))"
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))  # the viewport: what a person sees first
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not serious, json.dumps(serious, indent=2)


def test_signing_in_and_every_page_is_accessible_at_desktop_and_narrow_widths(
    platform: Platform, people: dict[str, Agent], context: BrowserContext
) -> None:
    page = context.new_page()
    page.goto(console_url(platform))
    audited(page, "sign-in")
    page.get_by_label("Agent id").fill(people["admin"].agent_id)
    page.get_by_label("Secret").fill("not-the-secret")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("401")
    sign_in(page, platform, people["admin"])
    for path, heading in [
        ("overview", "Overview"), ("executions", "Executions"), ("inbox", "Inbox"), ("gate", "Gate"),
        ("work", "Pipelines and runs"), ("fleet", "Fleet"), ("history", "History"),
    ]:  # fmt: skip
        page.goto(f"{console_url(platform)}#/{path}")
        expect(page.get_by_role("heading", level=1, name=heading)).to_be_visible()
        page.wait_for_load_state("networkidle")
        audited(page, path)
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("overview", "executions", "inbox", "gate", "work", "fleet", "history"):
        page.goto(f"{console_url(platform)}#/{path}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        page.wait_for_load_state("networkidle")
        # Nothing runs off the side of a phone's screen (wide tables wrap; the graph scrolls in its box).
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), path
        audited(page, f"{path}-narrow")
    # The keyboard reaches the navigation, and focus is visible (an outline is drawn).
    page.set_viewport_size({"width": 1280, "height": 800})
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    focused = page.evaluate(
        "() => { const e = document.activeElement; return [e.tagName, getComputedStyle(e).outlineStyle]; }"
    )
    assert focused[0] == "A", focused
    assert focused[1] != "none", focused


def test_a_human_answers_through_the_generated_form_and_the_requester_sees_it_accepted(
    platform: Platform, people: dict[str, Agent], context: BrowserContext
) -> None:
    human, asker = people["human"], people["asker"]
    page = context.new_page()
    sign_in(page, platform, human)
    expect(page.get_by_text("Nothing is waiting for you.")).to_be_visible()
    # The inbox is held open on the API's long-poll: a new question shows without a reload.
    asked_at = time.monotonic()
    created = asker.http.post(
        f"{platform.api_url}/elicitation/create",
        json={"to_agent": human.agent_id, "message": "Approve the release?", "schema": ANSWER_SCHEMA,
              "timeout_seconds": 600, "priority": "urgent"},
        timeout=10,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    elicitation_id = created.json()["elicitation_id"]
    expect(page.get_by_role("heading", name="Approve the release?")).to_be_visible(timeout=5_000)
    assert time.monotonic() - asked_at < 5
    audited(page, "inbox-form")
    page.get_by_label("Approver").fill("al")  # too short
    page.get_by_label("Window (hours)").fill("0")  # below the minimum
    page.get_by_role("button", name="Accept").click()
    # The client-side check (the same JSON Schema) puts each error at its field; nothing is sent.
    approver_errors = page.locator("#answer-" + elicitation_id[:8] + "_approver__error")
    expect(approver_errors).to_contain_text("3")
    expect(page.locator("#answer-" + elicitation_id[:8] + "_risk__error")).to_contain_text("required")
    assert asker.http.get(f"{platform.api_url}/elicitation/status/{elicitation_id}", timeout=10).json()["status"] == (
        "pending"
    )
    page.get_by_label("Approver").fill("alice")
    page.get_by_label("Risk").select_option("medium")
    page.get_by_label("Window (hours)").fill("4")
    page.get_by_label("Rollback planned").check()
    # What the server refuses shows at its field too. The two validators agree on every schema used
    # here, so this one answer is the API's 422 as it words it, played back to the page once.
    refusal = {
        "error": {
            "code": "VALIDATION_FAILED",
            "message": "data does not match the elicitation's schema",
            "details": {"violations": [{"path": "$.approver", "message": "'alice' is not allowed here"}]},
        }
    }
    page.route("**/elicitation/respond", lambda route: route.fulfill(status=422, json=refusal), times=1)
    page.get_by_role("button", name="Accept").click()
    expect(page.locator(f"#answer-{elicitation_id[:8]}_approver__error")).to_contain_text("is not allowed here")
    expect(page.get_by_role("alert").last).to_contain_text("422")
    page.get_by_role("button", name="Accept").click()
    expect(page.get_by_text("Nothing is waiting for you.")).to_be_visible()
    answered = page.locator(f'[data-answered="{elicitation_id}"]')
    expect(answered).to_contain_text("accepted")
    expect(answered).to_contain_text("signature verified")

    def accepted() -> dict[str, Any] | None:
        status = asker.http.get(f"{platform.api_url}/elicitation/status/{elicitation_id}", timeout=10).json()
        return status if status["status"] == "accepted" else None

    status = wait_for(accepted)
    assert status["response"]["data"] == {"approver": "alice", "risk": "medium", "window": 4, "rollback": True}
    assert status["response"]["signature"]


def _slow_pipeline(admin: Agent, platform: Platform, name: str, seconds: float) -> None:
    files = {p.name: p.read_text() for p in EXAMPLE.glob("*.yaml")}
    files["pipelines.yaml"] = files["pipelines.yaml"].replace("name: code-review", f"name: {name}")
    files["pipelines.yaml"] = files["pipelines.yaml"].replace(
        "match: {mode: review, tags_any: [code, pull-request]}", ""
    )
    # Two slow tool stages one after the other, so the graph is seen half green on the way.
    sleeper = f'"import time; time.sleep({seconds}); print(1)"'
    workflow = files["workflow.yaml"].replace(
        "\"import pathlib; print(sum(1 for _ in pathlib.Path('src').rglob('*.py')), 'python files')\"", sleeper
    )
    workflow = workflow.replace(
        "      - {from: summarize, to: checks}",
        "      - {from: summarize, to: warmup}\n      - {from: warmup, to: checks}",
    ).replace(
        "      - id: checks\n",
        "      - id: warmup\n        type: tool\n        tool: run_checks\n"
        f"        arguments: {{command: [python3, -c, {sleeper}]}}\n      - id: checks\n",
    )
    assert "warmup" in workflow
    assert sleeper in workflow
    files["workflow.yaml"] = workflow
    registered = admin.http.post(f"{platform.api_url}/pipelines", json={"files": files}, timeout=60)
    assert registered.status_code == 201, registered.text
    joined = admin.http.put(f"{platform.api_url}/agents/{admin.agent_id}/projects", json={"projects": ["demo"]})
    assert joined.status_code == 200, joined.text


def _start_task(admin: Agent, platform: Platform, pipeline: str) -> dict[str, Any]:
    body = {"input": {"diff": "+ validate size"}, "pipeline": pipeline}
    created = admin.http.post(f"{platform.api_url}/tasks", json=body, timeout=30)
    assert created.status_code == 201, created.text
    return wait_for(lambda: (t := admin.http.get(f"{platform.api_url}/tasks/{created.json()['task_id']}").json())
                    ["executions"] and t)  # fmt: skip


def test_a_pipeline_execution_graph_turns_green_state_by_state_and_a_task_is_cancelled(
    platform: Platform, people: dict[str, Agent], context: BrowserContext
) -> None:
    admin = people["admin"]
    _slow_pipeline(admin, platform, "console-review", 3)
    task = _start_task(admin, platform, "console-review")
    page = context.new_page()
    sign_in(page, platform, admin)
    page.goto(f"{console_url(platform)}#/executions/{requests.utils.quote(task['executions'][0], safe='')}")
    expect(page.get_by_role("group", name="State machine graph")).to_be_visible()
    observed: list[tuple[int, int]] = []  # (succeeded, total) per look
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        statuses = page.locator("g.state").evaluate_all("nodes => nodes.map(n => n.dataset.status)")
        succeeded = statuses.count("succeeded")
        if not observed or observed[-1][0] != succeeded:
            observed.append((succeeded, len(statuses)))
        if page.get_by_text("SUCCEEDED", exact=True).first.is_visible() and succeeded >= 6:
            break
        time.sleep(0.3)
    counts = [s for s, _ in observed]
    assert counts == sorted(counts), observed  # a state never turns back
    assert len(counts) >= 3, observed  # green came state by state, not all at once
    assert counts[-1] >= 6, observed
    page.locator('g.state[data-state="summarize"]').click()
    expect(page.locator("aside.state-detail")).to_contain_text("Output")
    audited(page, "execution-graph")

    slow = _start_task(admin, platform, "console-review")
    page.goto(f"{console_url(platform)}#/work/tasks/{slow['task_id']}")
    expect(page.get_by_role("heading", name=f"Task {slow['task_id']}")).to_be_visible()
    page.get_by_role("button", name="Cancel task").click()
    expect(page.locator(".badge").first).to_have_text("CANCELLED", ignore_case=True, timeout=20_000)
    audited(page, "task")
    assert admin.http.get(f"{platform.api_url}/tasks/{slow['task_id']}").json()["status"] == "CANCELLED"


def test_a_policy_with_a_syntax_error_is_refused_and_a_valid_one_saved(
    platform: Platform, people: dict[str, Agent], context: BrowserContext
) -> None:
    admin = people["admin"]
    before = admin.http.get(f"{platform.api_url}/validation/policies").json()
    page = context.new_page()
    sign_in(page, platform, admin)
    page.goto(f"{console_url(platform)}#/gate")
    editor = page.get_by_label("Policies")
    expect(editor).to_have_value(before["policies"])
    editor.fill(before["policies"] + "\nforbid (principal, action, resource) when {")
    page.get_by_role("button", name="Validate and save").click()
    expect(page.get_by_role("alert")).to_contain_text("422")
    assert admin.http.get(f"{platform.api_url}/validation/policies").json()["version"] == before["version"]
    valid = (
        before["policies"]
        + '\n@id("console-test")\nforbid (principal, action, resource) when { context.unparseable };\n'
    )
    editor.fill(valid)
    page.get_by_role("button", name="Validate and save").click()
    expect(page.get_by_role("status")).to_contain_text(f"version {before['version'] + 1}")
    audited(page, "gate-policy")
    stored = admin.http.get(f"{platform.api_url}/validation/policies").json()
    assert stored["policies"] == valid
    restored = admin.http.put(f"{platform.api_url}/validation/policies", json={"policies": before["policies"]})
    assert restored.status_code == 200, restored.text


def test_a_fleet_refresh_is_sent_and_its_result_shown(
    platform: Platform, people: dict[str, Agent], context: BrowserContext, tmp_path: Path
) -> None:
    core = Agent(platform, f"console-core-{secrets.token_hex(3)}", "agent")
    command = [sys.executable, "-m", "lighthouse_tools.cli", "--state-file", str(platform.state_file), "agent-core",
               "--agent-id", core.agent_id, "--state-dir", str(tmp_path / "core")]  # fmt: skip
    with (tmp_path / "core.log").open("wb") as log:
        process = subprocess.Popen(
            command, env={**os.environ, "LIGHTHOUSE_AGENT_SECRET": core.secret}, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        admin = people["admin"]
        wait_for(
            lambda: (
                admin.http.get(f"{platform.api_url}/fleet/agents/{core.agent_id}").json().get("presence") == "online"
            ),
            timeout=60,
        )
        page = context.new_page()
        sign_in(page, platform, admin)
        page.goto(f"{console_url(platform)}#/fleet/agents/{core.agent_id}")
        expect(page.get_by_text("online").first).to_be_visible()
        page.get_by_label("Command", exact=True).select_option("refresh")
        page.get_by_role("button", name="Send refresh").click()
        result = page.locator(".command-result")
        expect(result).to_have_attribute("data-command-status", "succeeded", timeout=30_000)
        expect(result).to_contain_text("snapshots_updated")
        audited(page, "fleet-agent")
        # A rollout of the same command to this agent, started and watched from the fleet page.
        page.goto(f"{console_url(platform)}#/fleet")
        page.get_by_label("Agent ids (comma-separated)").fill(core.agent_id)
        page.get_by_role("button", name="Start rollout").click()
        expect(page.get_by_role("heading", name=re.compile("^Rollout ro-"))).to_be_visible()
        expect(page.locator(".badge").first).to_have_text("completed", timeout=30_000)
        expect(page.get_by_role("cell", name=f"{core.agent_id}: succeeded")).to_be_visible()
        audited(page, "fleet-rollout")
    finally:
        process.terminate()
        process.wait(15)


# ---- security ------------------------------------------------------------------------------------


def _session_cookie(platform: Platform, agent: Agent) -> tuple[str, str]:
    """(cookie value, csrf) from POST /console/session, as a browser gets them."""
    from tests.helpers import signed_session_body

    signed = requests.post(
        f"{platform.api_url}/console/session", json=signed_session_body(agent.agent_id, agent.secret), timeout=10
    )
    assert signed.status_code == 201, signed.text
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie, cookie
    assert "SameSite=Strict" in cookie, cookie
    assert "token" not in signed.json()
    return cookie.split(";")[0].split("=", 1)[1], signed.json()["csrf"]


def test_the_session_cookie_needs_the_csrf_header_and_is_not_sent_cross_site(
    platform: Platform, people: dict[str, Agent], context: BrowserContext
) -> None:
    admin, api = people["admin"], platform.api_url
    token, csrf = _session_cookie(platform, admin)
    jar = {"lighthouse_session": token}
    target = f"{api}/agents"
    body = {"agent_id": f"evil-{secrets.token_hex(3)}", "role": "admin"}
    # A cookie alone (what a forged cross-site request could carry) is refused, with a reason.
    refused = requests.post(target, json=body, cookies=jar, timeout=10)
    assert refused.status_code == 403, refused.text
    assert "X-Lighthouse-CSRF" in refused.json()["error"]["message"]
    wrong = requests.post(target, json=body, cookies=jar, headers={"X-Lighthouse-CSRF": "0" * 64}, timeout=10)
    assert wrong.status_code == 403
    assert admin.http.get(f"{api}/agents/{body['agent_id']}").status_code == 404
    # A reload learns the CSRF value from GET /console/session (the cookie's own read).
    resumed = requests.get(f"{api}/console/session", cookies=jar, timeout=10)
    assert (resumed.status_code, resumed.json()["csrf"]) == (200, csrf)
    assert "access-control-allow-origin" not in {k.lower() for k in resumed.headers}

    # In the browser: signed in on the console, then a page of another site posts a form to the API.
    page = context.new_page()
    sign_in(page, platform, admin)
    forged = f"evil-{secrets.token_hex(3)}"
    html = (
        f'<form id="f" method="POST" action="{target}" enctype="text/plain">'
        f'<input name=\'{{"agent_id": "{forged}", "role": "admin", "x": "\' value=\'"}}\'></form>'
        '<script>document.getElementById("f").submit()</script>'
    )
    with _other_site(html) as evil_url:
        attacker = context.new_page()
        with attacker.expect_response(lambda r: r.url.startswith(target)) as answered:
            attacker.goto(evil_url)
        assert answered.value.status == 401  # SameSite=Strict: the cookie was not sent at all
    assert admin.http.get(f"{api}/agents/{forged}").status_code == 404


class _Page(http.server.BaseHTTPRequestHandler):
    html = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(self.html)

    def log_message(self, *args: Any) -> None:
        pass


class _other_site:
    """A page on http://localhost:<port>: another site than the console's 127.0.0.1."""

    def __init__(self, html: str) -> None:
        handler = type("Handler", (_Page,), {"html": html.encode()})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://localhost:{self.server.server_address[1]}/"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()


def test_the_csp_forbids_inline_scripts_and_no_secret_reaches_the_page_or_storage(
    platform: Platform, people: dict[str, Agent], context: BrowserContext
) -> None:
    human = people["human"]
    served = requests.get(console_url(platform), timeout=10)
    policy = served.headers["Content-Security-Policy"]
    script_src = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
    assert script_src.split() == ["script-src", "'self'"], policy
    assert "frame-ancestors 'none'" in policy
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text))
    sign_in(page, platform, human)
    ran = page.evaluate(
        """() => new Promise(resolve => {
            document.addEventListener('securitypolicyviolation', e => resolve(['blocked', e.violatedDirective]));
            const script = document.createElement('script');
            script.textContent = 'window.__inlineRan = true';
            document.body.appendChild(script);
            setTimeout(() => resolve([window.__inlineRan === true ? 'ran' : 'silent', '']), 2000);
        })"""
    )
    assert ran[0] == "blocked", ran
    assert ran[1].startswith("script-src"), ran
    token = open_session(platform, human.agent_id, human.secret)
    stored = page.evaluate(
        """() => ({html: document.documentElement.outerHTML, cookie: document.cookie,
                   local: JSON.stringify(Object.entries(localStorage)),
                   session: JSON.stringify(Object.entries(sessionStorage))})"""
    )
    cookie = next(c for c in context.cookies() if c["name"] == "lighthouse_session")
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    for name, value in stored.items():
        for secret in (human.secret, cookie["value"], token.split(".")[2]):
            assert secret not in value, f"a secret is in {name}"
    assert stored["local"] == "[]"
    assert stored["session"] == "[]"


def test_a_projects_files_are_browsed_with_the_annotated_view_and_a_diff(
    platform: Platform, people: dict[str, Agent], context: BrowserContext, tmp_path: Path
) -> None:
    project = f"console-shop-{secrets.token_hex(2)}"
    coder = f"console-coder-{secrets.token_hex(3)}"
    added = platform.cli("agents", "add", coder, "--project", project, "--json")
    assert added.returncode == 0, added.stderr
    token = platform.cli("hook", "token", coder, "--secret", json.loads(added.stdout)["secret"]).stdout.strip()
    cwd = tmp_path / project
    path = f"{cwd}/src/app.py"

    def hook(tool: str, tool_input: dict[str, Any], response: dict[str, Any]) -> None:
        body = {
            "session_id": "00893aaf-19fa-41d2-8238-13269b9b3ca0", "transcript_path": f"{cwd}/.claude/t.jsonl",
            "cwd": str(cwd), "permission_mode": "default", "hook_event_name": "PostToolUse", "tool_name": tool,
            "tool_input": tool_input, "tool_response": response, "tool_use_id": f"toolu_01{secrets.token_hex(8)}",
        }  # fmt: skip
        recorded = requests.post(
            f"{platform.api_url}/hooks/claude-code/post-tool-use", json=body,
            headers={"Authorization": f"Bearer {token}"}, timeout=30,
        )  # fmt: skip
        assert recorded.status_code == 200, recorded.text

    first = "class Cart:\n    def total(self, items):\n        return sum(items)\n"
    hook("Write", {"file_path": path, "content": first}, {"filePath": path, "success": True})
    between = time.time()
    time.sleep(0.05)
    edit = {"file_path": path, "old_string": "return sum(items)\n", "new_string": "return sum(items) * 2\n"}
    hook("Edit", edit, {"filePath": path, "originalFile": first})
    page = context.new_page()
    sign_in(page, platform, people["admin"])
    page.goto(f"{console_url(platform)}#/history")
    page.get_by_label("Project").fill(project)
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("button", name="src/app.py").click()
    annotated = page.get_by_label("src/app.py, annotated")
    expect(annotated).to_contain_text("LIGHTHOUSE CURRENT VIEW")
    expect(annotated).to_contain_text("return sum(items) * 2")
    page.get_by_label("Diff from instant").fill(f"{between:.3f}")
    diff = page.get_by_label("Diff", exact=True)
    expect(diff).to_contain_text("-        return sum(items)")
    expect(diff).to_contain_text("+        return sum(items) * 2")
    audited(page, "history-file")
