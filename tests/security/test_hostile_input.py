"""Probes with hostile or careless input (issue #10, items 1, 2, 4-8; OWASP API4): each gets its
status and error code, the platform keeps answering /health within 1 s, and nothing is stored."""

from __future__ import annotations

import http.client
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from lighthouse.validation.policy import default_policies
from tests.security.conftest import Probe, refused

DEEP = b'{"a":' * 100 + b"1" + b"}" * 100
NESTED_65 = {"input": json.loads("[" * 65 + "]" * 65)}
SCHEMA = {"type": "object", "properties": {"approved": {"type": "boolean"}}, "required": ["approved"]}


def unchanged(probe: Probe, action: Callable[[], requests.Response]) -> requests.Response:
    """Run `action` and assert it stored nothing (after the stream consumers caught up)."""
    before = probe.settled()
    response = action()
    assert probe.settled() == before, "a refused request changed stored state"
    return response


def ask(probe: Probe, schema: dict[str, Any] | None = None, to: str = "probe-expert") -> str:
    created = probe.call(
        "POST", "/elicitation/create", body={"to_agent": to, "message": "ok?", "schema": schema or SCHEMA}
    )
    assert created.status_code == 201, created.text
    return str(created.json()["elicitation_id"])


# ---- 1: a Cedar text that crashed the parser ---------------------------------------------------


def test_deeply_nested_cedar_policies_are_a_422_and_the_platform_lives(probe: Probe) -> None:
    # GIVEN a policy text with 1,000 nested parentheses (it killed the whole process before)
    text = "permit(principal, action, resource) when { " + "(" * 1000 + "true" + ")" * 1000 + " };"
    # WHEN an admin submits it
    response = unchanged(
        probe, lambda: probe.call("PUT", "/validation/policies", role="admin", body={"policies": text})
    )
    # THEN a 422 says why, the platform answers, and the policies in force are the same
    body = refused(probe, response, 422, "VALIDATION_ERROR")
    assert "nest" in body["error"]["message"]
    assert probe.call("GET", "/validation/policies").json()["policies"] == default_policies()


def test_a_parser_crash_in_the_worker_is_reported_not_shared() -> None:
    from lighthouse.validation.policy import policy_schema
    from lighthouse.validation.policy_worker import run_policy_worker

    # GIVEN a text past the shape check's reach, parsed directly by the worker
    text = "permit(principal, action, resource) when { " + "(" * 5000 + "true" + ")" * 5000 + " };"
    # WHEN the worker parses it, THEN its crash is a 422-ready error and this process lives on
    error = run_policy_worker(text, policy_schema())
    assert error is not None
    assert "crashed" in error.message


@pytest.mark.parametrize(
    ("policies", "fragment"),
    [
        ("permit(principal, action, resource) when { nope };", "do not parse"),
        ("forbid(principal, action, resource) when { context.nope };", "do not validate"),
        ("", "policies"),
    ],
)
def test_broken_policies_are_a_422_with_cedars_message(probe: Probe, policies: str, fragment: str) -> None:
    response = unchanged(
        probe, lambda: probe.call("PUT", "/validation/policies", role="admin", body={"policies": policies})
    )
    assert fragment in refused(probe, response, 422)["error"]["message"]


# ---- 2: a regular expression that backtracks -------------------------------------------------


def test_a_catastrophic_pattern_answers_at_once(probe: Probe) -> None:
    # GIVEN an elicitation whose schema has the classic catastrophic pattern
    schema = {"type": "object", "properties": {"word": {"type": "string", "pattern": "^(a+)+$"}}, "required": ["word"]}
    elicitation = ask(probe, schema)
    # WHEN the target answers with 27 a's and a final mismatch (8 s of backtracking before)
    started = time.perf_counter()
    answer = probe.call(
        "POST",
        "/elicitation/respond",
        role="expert",
        body={
            "elicitation_id": elicitation,
            "action": "accept",
            "data": {"word": "a" * 27 + "!"},
            "nonce": secrets.token_hex(16),
        },
    )
    # THEN a 422 comes back in well under a second and the platform answers meanwhile
    assert time.perf_counter() - started < 1.0
    violations = refused(probe, answer, 422)["error"]["details"]["violations"]
    assert violations[0]["path"] == "$.word"


@pytest.mark.parametrize("pattern", ["(?<=a)b", "(a)\\1", "(?!x)y"])
def test_patterns_a_linear_engine_cannot_run_are_refused_at_create(probe: Probe, pattern: str) -> None:
    schema = {"type": "object", "properties": {"w": {"type": "string", "pattern": pattern}}}
    response = unchanged(
        probe,
        lambda: probe.call(
            "POST", "/elicitation/create", body={"to_agent": "probe-expert", "message": "m", "schema": schema}
        ),
    )
    assert refused(probe, response, 422)["error"]["details"]["fields"][0]["path"] == "schema.properties.w.pattern"


# ---- 4 and 6: malformed JSON on every route that takes a body --------------------------------

BODY_ROUTES = [
    ("POST", "/sessions", None),
    ("POST", "/agents/heartbeat", "agent"),
    ("PUT", "/agents/probe-agent/projects", "admin"),
    ("POST", "/elicitation/create", "agent"),
    ("POST", "/elicitation/respond", "expert"),
    ("POST", "/validate", "agent"),
    ("PUT", "/validation/policies", "admin"),
    ("POST", "/pipelines", "admin"),
    ("POST", "/tasks", "agent"),
    ("POST", "/memory", "agent"),
    ("PUT", "/connections/probe", "admin"),
]
MALFORMED = {
    "deep": (DEEP, "TOO_DEEP"),
    "huge exponent": (b'{"a": 1e999999}', "NUMBER_OUT_OF_RANGE"),
    "huge integer": (b'{"a": ' + b"9" * 400 + b"}", "NUMBER_OUT_OF_RANGE"),
    "NaN": (b'{"a": NaN}', "NON_FINITE_NUMBER"),
    "Infinity": (b'{"a": -Infinity}', "NON_FINITE_NUMBER"),
    "lone surrogate": (b'{"a": "\\ud800"}', "LONE_SURROGATE"),
    "duplicate key": (b'{"a": 1, "a": 2}', "DUPLICATE_KEY"),
    "not UTF-8": (b'{"a": "\xff\xfe"}', "INVALID_UTF8"),
    "UTF-16": ('{"a": 1}'.encode("utf-16"), "INVALID_UTF8"),
    "truncated": (b'{"a": ', "INVALID_JSON"),
    "not an object": (b"[1, 2]", "NOT_AN_OBJECT"),
}


def test_malformed_bodies_are_400_with_a_code_on_every_body_route_and_store_nothing(probe: Probe) -> None:
    # GIVEN every route that takes a body and every way a body can be malformed
    def send_all() -> requests.Response:
        wrong = []
        for method, path, role in BODY_ROUTES:
            for kind, (raw, code) in MALFORMED.items():
                response = probe.call(method, path, role=role, raw=raw)
                answer = response.json().get("error", {}) if response.status_code == 400 else {}
                if response.status_code != 400 or answer.get("code") != code or not answer.get("message"):
                    wrong.append(f"{method} {path} [{kind}]: {response.status_code} {response.text[:200]}")
        assert not wrong, "\n".join(wrong)
        return response

    # WHEN each is sent, THEN each is a 400 with its code, and nothing was stored
    unchanged(probe, send_all)
    probe.healthy_within()


def test_a_task_with_too_deep_an_input_is_refused_before_it_runs(probe: Probe) -> None:
    response = unchanged(probe, lambda: probe.call("POST", "/tasks", body=NESTED_65))
    assert "64" in refused(probe, response, 400, "TOO_DEEP")["error"]["message"]


def test_nan_in_an_answer_is_refused_and_the_question_stays_open(probe: Probe) -> None:
    elicitation = ask(probe, {"type": "object"})
    nonce = secrets.token_hex(16)
    raw = (
        f'{{"elicitation_id": "{elicitation}", "action": "accept", "data": {{"x": NaN}}, "nonce": "{nonce}"}}'.encode()
    )
    refused(probe, probe.call("POST", "/elicitation/respond", role="expert", raw=raw), 400, "NON_FINITE_NUMBER")
    assert probe.call("GET", f"/elicitation/status/{elicitation}").json()["status"] == "pending"


FORGED_TOKENS = [
    "%%%",
    "A" * 5000,
    "W1tbW1tbW1tbW1tbW1tbW1tbW1tbXV1dXV1dXV1dXV1dXV1dXV1dXV1d",
    "bnVsbA",
    "eyJhIjogMWU5OTk5OTl9",
]


@pytest.mark.parametrize("path", ["/agents", "/elicitation/pending", "/validation/audit"])
def test_forged_page_tokens_are_400(probe: Probe, path: str) -> None:
    # not base64, huge, 24 levels deep, null, a number past a double
    for token in FORGED_TOKENS:
        refused(probe, probe.call("GET", f"{path}?next_token={token}"), 400, "INVALID_CURSOR")


# ---- 5: schemas whose references cannot resolve ------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "path"),
    [
        ({"$ref": "#/$defs/nowhere"}, "schema.$ref"),
        ({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}, "schema.$defs"),
        ({"$ref": "#"}, "schema"),
        ({"$ref": "https://example.com/schema.json"}, "schema.$ref"),
        ({"$dynamicRef": "#meta"}, "schema.$dynamicRef"),
        ({"properties": {"x": {"$ref": "file:///etc/passwd"}}}, "schema.properties.x.$ref"),
    ],
    ids=["dangling", "loop", "self", "remote", "dynamic", "file"],
)
def test_unresolvable_references_are_a_422_at_create_naming_the_path(
    probe: Probe, schema: dict[str, Any], path: str
) -> None:
    response = unchanged(
        probe,
        lambda: probe.call(
            "POST", "/elicitation/create", body={"to_agent": "probe-expert", "message": "m", "schema": schema}
        ),
    )
    assert refused(probe, response, 422)["error"]["details"]["fields"][0]["path"].startswith(path)


# ---- 7: encoded characters in path ids ---------------------------------------------------------


SEGMENTS = ["%3F", "%23", "%2F", "%2f..%2f", "..", "%00", "a%00b", "%2E%2E", "x" * 300, "%5C"]


def test_encoded_and_traversing_ids_are_400_before_routing_and_create_nothing(probe: Probe) -> None:
    def send_all() -> None:
        for segment in SEGMENTS:
            # http.client sends the path as written (requests would resolve "..")
            connection = http.client.HTTPConnection(probe.url.removeprefix("http://"), timeout=30)
            connection.request(
                "POST",
                f"/tasks/{segment}/cancel",
                headers={"Authorization": f"Bearer {probe.platform.tokens['agent']}"},
            )
            response = connection.getresponse()
            body = json.loads(response.read())
            assert response.status == 400, (segment, body)
            assert body["error"]["code"] in ("INVALID_PATH", "INVALID_ID"), (segment, body)

    before = probe.settled()
    send_all()
    assert probe.settled() == before
    probe.healthy_within()


# ---- 8: the Claude Code hook always answers 200 with a decision --------------------------------


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("application/xml", b"<PreToolUse/>"),
        ("multipart/form-data; boundary=x", b"--x\r\n\r\n--x--"),
        ("application/json; charset=latin-1", b'{"hook_event_name": "PreToolUse"}'),
        ("application/json", b"\xff\xfe\x00"),
        ("application/json", b"{" * 100_000),
        (
            "application/json",
            b'{"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {}}' + b" " * 300_000,
        ),
        ("", b""),
    ],
    ids=["xml", "multipart", "latin-1", "binary", "deep", "oversized", "empty"],
)
def test_the_hook_route_answers_200_deny_whatever_arrives(probe: Probe, content_type: str, raw: bytes) -> None:
    response = probe.call(
        "POST",
        "/hooks/claude-code/pre-tool-use",
        role=None,
        raw=raw,
        headers={"Content-Type": content_type, "X-Lighthouse-Hook-Token": "lh1.x.y"},
    )
    assert response.status_code == 200
    assert response.json()["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert response.headers["X-Lighthouse-Error"]
    probe.healthy_within()


# ---- OWASP API4: unrestricted resource consumption -------------------------------------------


@pytest.mark.parametrize(("path", "limit"), [("/sessions", 2048), ("/agents/heartbeat", 8192), ("/memory", 16384)])
def test_bodies_over_a_routes_cap_are_413(probe: Probe, path: str, limit: int) -> None:
    raw = b'{"x": "' + b"a" * limit + b'"}'
    response = unchanged(probe, lambda: probe.call("POST", path, raw=raw))
    assert refused(probe, response, 413, "PAYLOAD_TOO_LARGE")["error"]["details"]["limit_bytes"] == limit


def test_an_unsupported_content_type_is_415_in_the_api_format(probe: Probe) -> None:
    response = probe.call("POST", "/validate", raw=b"<x/>", headers={"Content-Type": "application/xml"})
    refused(probe, response, 415, "UNSUPPORTED_MEDIA_TYPE")
