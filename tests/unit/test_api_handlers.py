"""The API's handlers through Chalice's test client (in-process emulator, no network)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lighthouse.composition import Components
from tests.conftest import Provisioned
from tests.helpers import api_app, signed_session_body


@pytest.fixture
def api(provisioned: Provisioned) -> Iterator[Client]:
    with Client(api_app(sessions_per_minute=60, rate_limit_burst=3, max_body_bytes=2048)) as client:
        yield client


def post(client: Client, path: str, body: Any, token: str | None = None, raw: bytes | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.http.post(path, headers=headers, body=raw if raw is not None else json.dumps(body))


def login(parts: Components, api: Client, agent_id: str = "alice") -> str:
    secret = parts.agents.register(agent_id, "agent").secret
    response = post(api, "/sessions", signed_session_body(agent_id, secret))
    assert response.status_code == 201, response.body
    return str(response.json_body["token"])


def test_health_reports_every_dependency(api: Client) -> None:
    response = api.http.get("/health")

    assert response.status_code == 200
    assert response.json_body["status"] == "ok"
    assert {name.split(":")[0] for name in response.json_body["dependencies"]} == {
        "dynamodb",
        "sqs",
        "secrets",
    }


def test_a_session_then_an_authenticated_heartbeat(parts: Components, api: Client) -> None:
    token = login(parts, api)

    response = post(api, "/agents/heartbeat", {"status": "busy"}, token)

    assert response.status_code == 200
    assert response.json_body["agent_id"] == "alice"


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "missing Authorization header"),
        ("Token abc", "expected 'Bearer"),
        ("Bearer lh1.abc", "malformed bearer token"),
        ("Bearer lh1.eyJzdWIiOiJ4In0.c2ln", "does not verify"),
    ],
)
def test_protected_routes_answer_401_with_a_clear_message(api: Client, authorization: str | None, message: str) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for response in (
        api.http.get("/agents", headers=headers),
        api.http.get("/agents/alice", headers=headers),
    ):
        assert response.status_code == 401
        assert response.json_body["error"]["code"] == "UNAUTHENTICATED"
        assert message in response.json_body["error"]["message"]


def test_a_tampered_token_is_401(parts: Components, api: Client) -> None:
    token = login(parts, api)
    response = api.http.get("/agents", headers={"Authorization": f"Bearer {token[:-2]}xx"})
    assert response.status_code == 401


def test_an_invalid_body_is_422_with_fields_and_nothing_is_stored(parts: Components, api: Client) -> None:
    token = login(parts, api)
    before = parts.events.current_version("agent#alice")

    response = post(api, "/agents/heartbeat", {"status": "asleep", "bogus": 1}, token)

    assert response.status_code == 422
    assert {f["path"] for f in response.json_body["error"]["details"]["fields"]} == {"status", "bogus"}
    assert parts.events.current_version("agent#alice") == before


def test_malformed_json_is_400(parts: Components, api: Client) -> None:
    token = login(parts, api)
    response = post(api, "/agents/heartbeat", None, token, raw=b"{not json")
    assert response.status_code == 400
    assert response.json_body["error"]["code"] == "INVALID_JSON"


def test_an_oversized_body_is_413_before_authentication(api: Client) -> None:
    response = post(api, "/agents/heartbeat", None, None, raw=b"{" + b" " * 4096 + b"}")
    assert response.status_code == 413
    assert response.json_body["error"]["details"] == {"limit_bytes": 2048}


def test_session_creation_over_the_limit_is_429_with_retry_after(parts: Components, api: Client) -> None:
    secret = parts.agents.register("bob", "agent").secret
    statuses = [post(api, "/sessions", signed_session_body("bob", secret)).status_code for _ in range(3)]
    limited = post(api, "/sessions", signed_session_body("bob", secret))

    assert statuses == [201, 201, 201]
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json_body["error"]["code"] == "RATE_LIMITED"


def test_a_replayed_session_request_is_401(parts: Components, api: Client) -> None:
    secret = parts.agents.register("carol", "agent").secret
    body = signed_session_body("carol", secret)
    assert post(api, "/sessions", body).status_code == 201

    replay = post(api, "/sessions", body)

    assert replay.status_code == 401
    assert replay.json_body["error"]["code"] == "REPLAY_DETECTED"


def test_list_limit_is_validated(parts: Components, api: Client) -> None:
    token = login(parts, api)
    headers = {"Authorization": f"Bearer {token}"}
    assert api.http.get("/agents?limit=0", headers=headers).status_code == 422
    assert api.http.get("/agents?limit=abc", headers=headers).status_code == 422
    assert api.http.get("/agents?limit=5", headers=headers).status_code == 200


def test_an_unknown_agent_is_404(parts: Components, api: Client) -> None:
    token = login(parts, api)
    response = api.http.get("/agents/nobody", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404
    assert response.json_body["error"]["code"] == "NOT_FOUND"


BODY_ROUTES = [
    ("POST", "/sessions"),
    ("POST", "/agents/heartbeat"),
    ("POST", "/elicitation/create"),
    ("POST", "/elicitation/respond"),
    ("POST", "/validate"),
    ("POST", "/tasks"),
    ("POST", "/memory"),
    ("POST", "/hooks/claude-code/pre-tool-use"),
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(BODY_ROUTES),
    raw=st.one_of(
        st.binary(max_size=512),
        st.text(max_size=256).map(str.encode),
        st.recursive(
            st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=10), c, max_size=3),
            max_leaves=20,
        ).map(lambda v: json.dumps(v).encode()),
    ),
    content_type=st.sampled_from(["application/json", "text/plain", "application/octet-stream", "", "x/y; charset=a"]),
)
def test_any_body_on_any_route_is_answered_2xx_or_4xx_never_5xx(
    parts: Components, api: Client, route: tuple[str, str], raw: bytes, content_type: str
) -> None:
    token = getattr(test_any_body_on_any_route_is_answered_2xx_or_4xx_never_5xx, "token", None)
    if token is None:
        token = login(parts, api, "fuzz")
        test_any_body_on_any_route_is_answered_2xx_or_4xx_never_5xx.token = token  # type: ignore[attr-defined]
    headers = {"Authorization": f"Bearer {token}"}
    if content_type:
        headers["Content-Type"] = content_type
    response = api.http.request(route[0], route[1], headers=headers, body=raw)
    assert response.status_code < 500, (route, raw, response.body)
    json.loads(response.body)


def operator_token(parts: Components, api: Client) -> str:
    from lighthouse.agents.models import OPERATOR_ID
    from lighthouse.auth.keys import operator_secret

    secret = operator_secret(parts.master_secret.get())
    response = post(api, "/sessions", signed_session_body(OPERATOR_ID, secret))
    assert response.status_code == 201, response.body
    assert response.json_body["role"] == "admin"
    return str(response.json_body["token"])


def test_the_operator_signs_in_with_the_derived_secret_and_registers_agents(parts: Components, api: Client) -> None:
    admin = operator_token(parts, api)

    created = post(api, "/agents", {"agent_id": "newcomer", "role": "expert", "projects": ["p1"]}, admin)

    assert created.status_code == 201, created.body
    assert created.json_body["role"] == "expert"
    session = post(api, "/sessions", signed_session_body("newcomer", created.json_body["secret"]))
    assert session.status_code == 201
    assert parts.agents.projects_of("newcomer") == ["p1"]


def test_registering_an_agent_is_for_admins_and_refuses_duplicates_and_bad_ids(parts: Components, api: Client) -> None:
    admin, agent = operator_token(parts, api), login(parts, api, "plain")

    by_agent = post(api, "/agents", {"agent_id": "sneaky"}, agent)
    bad_id = post(api, "/agents", {"agent_id": "../etc"}, admin)
    operator_id = post(api, "/agents", {"agent_id": "lighthouse-operator", "role": "admin"}, admin)
    twice = [post(api, "/agents", {"agent_id": "twice"}, admin).status_code for _ in range(2)]

    assert (by_agent.status_code, by_agent.json_body["error"]["code"]) == (403, "FORBIDDEN")
    assert bad_id.status_code == 422
    assert operator_id.status_code == 409
    assert twice == [201, 409]
    assert parts.events.current_version("agent#sneaky") == 0
    assert parts.events.current_version("agent#lighthouse-operator") == 0


def test_a_wrong_operator_signature_is_refused_like_any_other(api: Client) -> None:
    forged = post(api, "/sessions", signed_session_body("lighthouse-operator", "0" * 64))

    assert (forged.status_code, forged.json_body["error"]["code"]) == (401, "UNAUTHENTICATED")
