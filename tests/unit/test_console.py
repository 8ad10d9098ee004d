"""The console's pure parts: the CSRF rule on the session cookie, redaction of execution data, the
graph drawn from ASL and each state's status from a history, the static files' paths and headers,
and the figures of the overview."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lighthouse.console import logic
from lighthouse.console.assets import CONTENT_SECURITY_POLICY, ConsoleAssets, asset_key, base_href
from lighthouse.console.models import GraphNode
from lighthouse.console.service import ConsoleService, Machines, OverviewSources
from lighthouse.console.stats import RecentRequests
from lighthouse.errors import Forbidden
from lighthouse.events.model import StoredEvent
from lighthouse.observability import event_metrics
from lighthouse.validation.models import AuditEntry, ValidationCompleted

TOKEN = "lh1.eyJzdWIiOiJodW1hbiJ9.c2lnbmF0dXJl"


# ---- the session cookie and CSRF ----------------------------------------------------------------


def test_a_bearer_header_is_used_as_it_is_and_wins_over_a_cookie() -> None:
    headers = {"authorization": "Bearer other", "cookie": f"lighthouse_session={TOKEN}"}
    assert logic.authorization(headers) == "Bearer other"


def test_the_cookie_counts_only_with_the_sessions_csrf_value() -> None:
    cookie = {"cookie": f"theme=dark; lighthouse_session={TOKEN}"}
    with pytest.raises(Forbidden, match="X-Lighthouse-CSRF"):
        logic.authorization(cookie)
    with pytest.raises(Forbidden):
        logic.authorization({**cookie, "x-lighthouse-csrf": logic.csrf_for(TOKEN + "x")})
    assert logic.authorization({**cookie, "x-lighthouse-csrf": logic.csrf_for(TOKEN)}) == f"Bearer {TOKEN}"
    # GET /console/session alone reads without it (how a reloaded page learns the value).
    assert logic.authorization(cookie, csrf_exempt=True) == f"Bearer {TOKEN}"


def test_no_credentials_and_malformed_cookies_are_none() -> None:
    assert logic.authorization({}) is None
    assert logic.authorization({"cookie": "lighthouse_session="}) is None
    assert logic.authorization({"cookie": '"unterminated; =;;'}) is None


def test_the_csrf_value_is_bound_to_the_token_and_reveals_nothing_of_it() -> None:
    value = logic.csrf_for(TOKEN)
    assert len(value) == 64
    assert value != logic.csrf_for(TOKEN[:-1] + "X")
    assert TOKEN.split(".")[2] not in value


def test_the_cookie_is_httponly_strict_and_secure_except_on_plain_loopback() -> None:
    cookie = logic.session_cookie(TOKEN, 3600, secure=True)
    assert cookie.startswith(f"lighthouse_session={TOKEN}; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600")
    assert cookie.endswith("; Secure")
    assert "Max-Age=0" in logic.cleared_cookie(secure=False)
    assert logic.wants_secure_cookie("127.0.0.1:8080", None) is False
    assert logic.wants_secure_cookie("localhost", None) is False
    assert logic.wants_secure_cookie("abc.execute-api.us-east-1.amazonaws.com", None) is True
    assert logic.wants_secure_cookie("127.0.0.1", "https") is True


# ---- redaction --------------------------------------------------------------------------------


def test_credentials_are_redacted_by_key_and_by_value_and_inside_json_strings() -> None:
    data = {
        "TaskToken.$": "$$.Task.Token",
        "task_token": "AQCAAAAKgAAA",
        "hook_token": "x",
        "secret": "s",
        "api_key": "k",
        "Authorization": "Bearer abc",
        "nested": {"password": "p", "note": "lh1.abc.def", "aws": "AKIAABCDEFGHIJKLMNOP"},
        "input_tokens": 12,
        "tokens": {"input": 1},
        "payload": json.dumps({"session_token": "t", "keep": "me"}),
    }
    redacted = logic.redact(data)
    assert redacted["TaskToken.$"] == redacted["task_token"] == redacted["hook_token"] == logic.REDACTED
    assert redacted["secret"] == redacted["api_key"] == redacted["Authorization"] == logic.REDACTED
    assert redacted["nested"] == {"password": logic.REDACTED, "note": logic.REDACTED, "aws": logic.REDACTED}
    assert redacted["input_tokens"] == 12
    assert redacted["tokens"] == {"input": 1}
    assert redacted["payload"] == {"session_token": logic.REDACTED, "keep": "me"}


# ---- the graph and the states' statuses ----------------------------------------------------------

MACHINE = {
    "StartAt": "Ask",
    "States": {
        "Ask": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Next": "Route",
            "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Expire"}],
        },
        "Route": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": True, "Next": "Fan"}],
                  "Default": "Done"},
        "Fan": {
            "Type": "Parallel",
            "Next": "Done",
            "Branches": [
                {"StartAt": "Left", "States": {"Left": {"Type": "Pass", "End": True}}},
                {"StartAt": "Right", "States": {"Right": {"Type": "Pass", "End": True}}},
            ],
        },
        "Expire": {"Type": "Pass", "Next": "Done"},
        "Done": {"Type": "Succeed"},
    },
}  # fmt: skip


def test_the_graph_has_every_state_and_transition_nested_ones_included() -> None:
    nodes, edges = logic.graph(MACHINE)
    assert [(n.id, n.type, n.parent) for n in nodes] == [
        ("Ask", "Task", None), ("Route", "Choice", None), ("Fan", "Parallel", None), ("Left", "Pass", "Fan"),
        ("Right", "Pass", "Fan"), ("Expire", "Pass", None), ("Done", "Succeed", None),
    ]  # fmt: skip
    assert {(e.source, e.target, e.label) for e in edges} == {
        ("Ask", "Route", ""), ("Ask", "Expire", "catch States.Timeout"), ("Route", "Fan", "choice"),
        ("Route", "Done", "default"), ("Fan", "Left", "branch"), ("Fan", "Right", "branch"),
        ("Left", "Done", "joined"), ("Right", "Done", "joined"), ("Expire", "Done", ""),
    }  # fmt: skip
    assert next(n for n in nodes if n.id == "Ask").waits_for_task_token


def entered(name: str, data: Any = None) -> dict[str, Any]:
    return {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": name, "input": json.dumps(data)}}


def exited(name: str, data: Any = None) -> dict[str, Any]:
    return {"type": "TaskStateExited", "stateExitedEventDetails": {"name": name, "output": json.dumps(data)}}


def statuses(events: list[dict[str, Any]]) -> dict[str, str]:
    nodes, _ = logic.graph(MACHINE)
    return {n.id: n.status for n in logic.state_statuses(nodes, events)}


def test_a_state_waiting_on_a_task_token_is_waiting_and_the_rest_not_run() -> None:
    seen = statuses([{"type": "ExecutionStarted"}, entered("Ask", {"task_token": "AQ"})])
    assert seen == {"Ask": "waiting", "Route": "not_run", "Fan": "not_run", "Left": "not_run",
                    "Right": "not_run", "Expire": "not_run", "Done": "not_run"}  # fmt: skip


def test_a_caught_failure_is_caught_and_what_followed_succeeded() -> None:
    events = [
        entered("Ask"),
        {"type": "TaskTimedOut", "taskTimedOutEventDetails": {"error": "States.Timeout", "cause": "no answer"}},
        entered("Expire"), exited("Expire"), entered("Done"), exited("Done"), {"type": "ExecutionSucceeded"},
    ]  # fmt: skip
    seen = statuses(events)
    assert (seen["Ask"], seen["Expire"], seen["Done"], seen["Route"]) == ("caught", "succeeded", "succeeded", "not_run")


def test_a_retried_task_that_then_succeeds_is_succeeded() -> None:
    events = [
        entered("Ask"), {"type": "TaskFailed", "taskFailedEventDetails": {"error": "Boom"}},
        {"type": "TaskScheduled"}, exited("Ask"),
    ]  # fmt: skip
    assert statuses(events)["Ask"] == "succeeded"


def test_an_execution_that_fails_marks_the_open_state_failed_with_the_error() -> None:
    nodes, _ = logic.graph(MACHINE)
    events = [
        entered("Ask", {"q": 1}),
        {"type": "ExecutionFailed", "executionFailedEventDetails": {"error": "Lambda.Unknown", "cause": "boom"}},
    ]
    ask = next(n for n in logic.state_statuses(nodes, events) if n.id == "Ask")
    assert (ask.status, ask.error, ask.input) == ("failed", "Lambda.Unknown: boom", {"q": 1})


def test_state_input_and_output_are_redacted() -> None:
    nodes, _ = logic.graph(MACHINE)
    events = [entered("Ask", {"TaskToken": "AQ", "id": 1}), exited("Ask", {"secret": "x", "ok": True})]
    ask = next(n for n in logic.state_statuses(nodes, events) if n.id == "Ask")
    assert ask.input == {"TaskToken": logic.REDACTED, "id": 1}
    assert ask.output == {"secret": logic.REDACTED, "ok": True}


def test_domain_links_follow_the_execution_name() -> None:
    link = logic.domain_link("elicitation", "ab" * 16)
    assert (link.api_path, link.console_path) == (f"/elicitation/status/{'ab' * 16}", f"#/inbox/{'ab' * 16}")
    assert logic.domain_link("presence", "x").api_path is None


def test_machines_are_known_by_arn_or_by_the_pipeline_prefix() -> None:
    machines = Machines({"arn:m:elicitation": "elicitation"}, "stack-pipeline")
    assert machines.kind("arn:m:elicitation", "anything") == "elicitation"
    assert machines.kind("arn:m:other", "stack-pipeline-review-v1") == "pipeline_task"
    assert machines.kind("arn:m:other", "PresenceStateMachine-abc") == "presence"
    assert machines.kind("arn:m:other", "mystery") == "other"


# ---- static files ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "key"),
    [(None, "console/index.html"), ("", "console/index.html"), ("app-X1.js", "console/app-X1.js"),
     ("../secret", None), ("a/../../b", None), ("/etc/passwd", "console/etc/passwd"), ("a\\b", None),
     ("x" * 300, None), ("%2e%2e/x", None), ("a//b", None)],
)  # fmt: skip
def test_asset_paths_stay_inside_the_console_folder(path: str | None, key: str | None) -> None:
    assert asset_key(path) == key


def test_the_base_href_finds_the_console_folder_whatever_the_stage_prefix() -> None:
    assert base_href("/Prod/console") == "console/"
    assert base_href("/console") == "console/"
    assert base_href("/console/") == "./"
    assert base_href("/console/index.html") == "./"


class FakeS3:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "no"}}, "GetObject")
        return {"Body": io.BytesIO(self.objects[Key]), "ContentLength": len(self.objects[Key])}


def test_served_files_carry_the_csp_and_index_html_gets_its_base() -> None:
    assets = ConsoleAssets(FakeS3({"console/index.html": b'<base href="%BASE%">', "console/a.js": b"x"}), "b")
    page = assets.serve(None, "/console")
    assert (page["statusCode"], page["body"]) == (200, '<base href="console/">')
    assert page["headers"]["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert page["headers"]["Cache-Control"] == "no-cache"
    script = assets.serve("a.js", "/console/a.js")
    assert script["headers"]["Content-Type"].startswith("text/javascript")
    assert "immutable" in script["headers"]["Cache-Control"]
    assert assets.serve("missing.js", "/console/missing.js")["statusCode"] == 404
    assert assets.serve("../x.js", "/console/../x.js")["statusCode"] == 404
    assert assets.serve("a.exe", "/console/a.exe")["statusCode"] == 404


def test_the_csp_allows_scripts_only_from_the_origin() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["script-src"] == "'self'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    assert directives["frame-ancestors"] == "'none'"


# ---- sessions, overview ----------------------------------------------------------------------------


class FakeExecutions:
    def state_machines(self) -> list[dict[str, Any]]:
        return [{"stateMachineArn": "arn:sm", "name": "sm"}]

    def count_failed_since(self, machine_arn: str, since: float, limit: int = 1000) -> int:
        return 2


class Clock:
    def now(self) -> float:
        return 1000.0


def service(sign_in: Any = None, decisions: list[AuditEntry] | None = None) -> ConsoleService:
    requests = RecentRequests(size=4)
    for status, ms in [(200, 10.0), (500, 30.0), (200, 20.0), (503, 40.0), (200, 5.0)]:
        requests.record(status, ms)
    sources = OverviewSources(
        expiry_counts=lambda: (40, 12),
        fleet_presence=lambda: ["online", "offline", "unknown"],
        recent_decisions=lambda limit: decisions or [],
        dead_letter_depths=lambda: {"projector failures": 0, "presence": 3},
        stream_lag_seconds=lambda: None,
        requests=requests,
    )
    return ConsoleService(sign_in, FakeExecutions(), Machines({}, "p"), sources, Clock())  # type: ignore[arg-type]


def test_only_humans_and_admins_get_a_console_session() -> None:
    from lighthouse.agents.models import SessionResponse

    def sign_in_as(role: str) -> Any:
        return lambda request, source: SessionResponse(token=TOKEN, agent_id="a", role=role, expires_at=4600)

    token, max_age, browser = service(sign_in_as("human")).sign_in(None, "ip")  # type: ignore[arg-type]
    assert (token, max_age, browser.csrf) == (TOKEN, 3600, logic.csrf_for(TOKEN))
    assert "token" not in browser.model_dump()
    with pytest.raises(Forbidden, match="human and admin"):
        service(sign_in_as("agent")).sign_in(None, "ip")  # type: ignore[arg-type]


def test_the_overview_figures_and_which_would_alarm() -> None:
    decided = [
        AuditEntry(request_id=f"r{i}", agent="a", tool_name="Bash", decision="approved", status="decided",
                   reason="", matched_rules=[], requested_at=0.0, decided_at=i / 10)
        for i in range(1, 101)
    ]  # fmt: skip
    figures = {f.name: f for f in service(decisions=decided).overview().figures}
    assert (figures["API 5xx answers"].value, figures["API 5xx answers"].unit) == (2, "of the last 4 requests")
    assert figures["API p99 latency"].value == 40.0
    assert figures["dead letters: presence"].breaching
    assert figures["dead letters: presence"].alarm == "PresenceDeadLetterAlarm"
    assert not figures["dead letters: projector failures"].breaching
    assert (
        figures["Step Functions failed executions"].value,
        figures["Step Functions failed executions"].breaching,
    ) == (
        2,
        True,
    )
    assert figures["elicitation expiry rate"].value == 0.3
    assert figures["elicitation expiry rate"].breaching  # 30 % of 40 > 25 %
    assert figures["gate decision latency p99"].value == pytest.approx(9901.0, abs=1)
    assert (figures["fleet agents offline"].value, figures["fleet agents offline"].unit) == (1, "of 3")
    assert figures["stream iterator age"].value is None


def test_events_add_the_metrics_the_alarms_read() -> None:
    completed = ValidationCompleted(
        request_id="r", agent="a", requested_at=10.0, decision="approved", confidence=1.0, reason="",
        matched_rules=[], decided_by="rules", at=10.25,
    )  # fmt: skip
    stored = StoredEvent("validation#r", 2, completed, "e", 10.25)
    assert [(name, value) for name, value, _ in event_metrics(stored)] == [("GateDecisionLatency", 250.0)]


def test_graph_nodes_keep_their_defaults_when_the_history_never_named_them() -> None:
    nodes = [GraphNode(id="A", type="Pass")]
    assert logic.state_statuses(nodes, [{"type": "ExecutionStarted"}])[0].status == "not_run"
