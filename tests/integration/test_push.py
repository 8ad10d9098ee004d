"""Real-time delivery and feature flags on the embedded cloud, with the `websockets` client library."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from lighthouse.auth.tokens import TokenSigner
from lighthouse.composition import Components
from lighthouse_tools.localcloud.cloud import LocalCloud
from tests.integration.conftest import AgentClient, eventually

SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
FLAGS_CACHE_SECONDS = 0.5


@pytest.fixture(scope="module", autouse=True)
def short_flag_cache(cloud: LocalCloud) -> Iterator[None]:
    """Functions here re-read flags every half second, so a test's flags are gone for the next one."""
    with cloud.reconfigured(LIGHTHOUSE_FLAGS_CACHE_SECONDS=str(FLAGS_CACHE_SECONDS)):
        yield


@contextmanager
def socket(cloud: LocalCloud, token: str, **options: Any) -> Iterator[ClientConnection]:
    assert cloud.websocket_url is not None
    with connect(f"{cloud.websocket_url}?token={token}", open_timeout=10, **options) as connection:
        yield connection


def subscribe(connection: ClientConnection, feeds: dict[str, int | None]) -> list[dict[str, Any]]:
    """Send a subscribe; the messages up to and including its acknowledgement."""
    connection.send(json.dumps({"action": "subscribe", "feeds": feeds}))
    received = []
    while True:
        message = json.loads(connection.recv(timeout=10))
        received.append(message)
        if message.get("type") in ("subscribed", "error"):
            return received


def next_message(connection: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    return dict(json.loads(connection.recv(timeout=timeout)))


def quiet(connection: ClientConnection, seconds: float = 0.5) -> bool:
    try:
        connection.recv(timeout=seconds)
    except TimeoutError:
        return True
    return False


def ask(asker: AgentClient, target: AgentClient) -> str:
    created = asker.post("/elicitation/create", {"to_agent": target.agent_id, "message": "ok?", "schema": SCHEMA})
    assert created.status_code == 201, created.text
    return str(created.json()["elicitation_id"])


def test_an_elicitation_is_pushed_to_its_target_only_and_the_answer_to_the_requester(
    cloud: LocalCloud, new_agent: Callable[..., AgentClient]
) -> None:
    # GIVEN two agents connected over WebSocket and a third that asks
    alice, bob, asker = new_agent(), new_agent(), new_agent()
    with (
        socket(cloud, alice.token) as alice_socket,
        socket(cloud, bob.token) as bob_socket,
        socket(cloud, asker.token) as asker_socket,
    ):
        for connection, agent in ((alice_socket, alice), (bob_socket, bob), (asker_socket, asker)):
            assert subscribe(connection, {f"agent:{agent.agent_id}": None})[-1]["type"] == "subscribed"
        # WHEN the asker asks alice
        elicitation_id = ask(asker, alice)
        # THEN alice is pushed a small envelope that links to the question; bob gets nothing
        pushed = next_message(alice_socket)
        assert pushed["type"] == "elicitation.requested"
        assert pushed["id"] == elicitation_id
        assert pushed["feed"] == f"agent:{alice.agent_id}"
        assert pushed["link"] == f"/elicitation/status/{elicitation_id}"
        assert pushed["summary"]["from_agent"] == asker.agent_id
        assert pushed["version"] == 1
        assert "schema" not in pushed
        assert "salt" not in json.dumps(pushed)
        assert quiet(bob_socket)
        # WHEN alice answers, THEN the asker is pushed the answer's status and signature
        nonce = "ab" * 16
        answered = alice.post(
            "/elicitation/respond",
            {"elicitation_id": elicitation_id, "action": "accept", "data": {"ok": True}, "nonce": nonce},
        )
        assert answered.status_code == 200, answered.text
        answer = next_message(asker_socket)
        assert answer["type"] == "elicitation.answered"
        assert answer["id"] == elicitation_id
        assert answer["summary"]["status"] == "accepted"
        assert answer["summary"]["responder"] == alice.agent_id
        status = asker.get(f"/elicitation/status/{elicitation_id}").json()
        assert answer["summary"]["signature"] == status["response"]["signature"]
        assert quiet(bob_socket, 0.2)


def test_a_cut_connection_resumed_with_its_last_seq_gets_what_it_missed_once(
    cloud: LocalCloud, new_agent: Callable[..., AgentClient]
) -> None:
    target, asker = new_agent(), new_agent()
    feed = f"agent:{target.agent_id}"
    with socket(cloud, target.token) as first:
        subscribe(first, {feed: None})
        ask(asker, target)
        seen = next_message(first)["seq"]
    # WHILE the target is away, two more questions
    missed = [ask(asker, target), ask(asker, target)]
    eventually(lambda: cloud.components().push_parts[1].head(feed) >= seen + 2)
    with socket(cloud, target.token) as second:
        received = subscribe(second, {feed: seen})
        envelopes = [m for m in received if "seq" in m]
        assert [e["id"] for e in envelopes] == missed
        assert [e["seq"] for e in envelopes] == [seen + 1, seen + 2]
        assert received[-1] == {"type": "subscribed", "feeds": {feed: {"head": seen + 2, "resent": 2, "more": False}}}
        # Nothing is sent twice: the notifier posted them while no connection was open.
        assert quiet(second)


def test_connect_without_or_with_a_forged_token_is_refused_and_other_feeds_are_not_readable(
    cloud: LocalCloud, new_agent: Callable[..., AgentClient]
) -> None:
    assert cloud.websocket_url is not None
    with pytest.raises(InvalidStatus) as missing:
        connect(cloud.websocket_url, open_timeout=10)
    assert missing.value.response.status_code == 401
    forged, _ = TokenSigner(b"not-the-platform-key").issue("someone", "admin", time.time(), 600)
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{cloud.websocket_url}?token={forged}", open_timeout=10)
    assert refused.value.response.status_code == 401
    assert b"signature" in refused.value.response.body
    agent, other = new_agent(), new_agent()
    with socket(cloud, agent.token) as connection:
        reply = subscribe(connection, {f"agent:{other.agent_id}": 0, "gate": None})
        assert reply == [
            {
                "type": "error",
                "code": "FORBIDDEN",
                "message": f"{agent.agent_id} may not subscribe to agent:{other.agent_id}, gate",
            }
        ]
        connection.send("not json")
        assert next_message(connection)["code"] == "VALIDATION_ERROR"
        connection.send(json.dumps({"action": "subscribe", "feeds": {f"agent:{agent.agent_id}": -1}}))
        assert next_message(connection)["code"] == "VALIDATION_ERROR"
        connection.send(json.dumps({"action": "subscribe", "feeds": {f"feed-{n}": None for n in range(9)}}))
        assert next_message(connection)["code"] == "VALIDATION_ERROR"
        connection.send("x" * 9000)
        assert next_message(connection)["code"] == "PAYLOAD_TOO_LARGE"
    # Nothing refused was stored: no feed was subscribed, and the platform still answers.
    connections = cloud.components().push_parts[0]
    assert connections.subscribers(f"agent:{other.agent_id}", time.time()) == []
    assert connections.subscribers("gate", time.time()) == []
    assert agent.get("/health").status_code == 200


def test_a_stale_connection_is_removed_when_a_post_answers_410(
    cloud: LocalCloud, parts: Components, new_agent: Callable[..., AgentClient]
) -> None:
    target, asker = new_agent(), new_agent()
    feed = f"agent:{target.agent_id}"
    connections = parts.push_parts[0]
    with socket(cloud, target.token) as connection:
        subscribe(connection, {feed: None})
        (subscriber,) = connections.subscribers(feed, time.time())
    # The socket is gone but its $disconnect was lost: the record stays until a post finds it gone.
    eventually(lambda: not connections.subscribers(feed, time.time()))
    connections.add(connections.get(subscriber.connection_id) or _record(subscriber.connection_id, target.agent_id))
    assert [s.connection_id for s in connections.subscribers(feed, time.time())] == [subscriber.connection_id]
    ask(asker, target)
    eventually(lambda: not connections.subscribers(feed, time.time()))
    assert connections.get(subscriber.connection_id) is None


def _record(connection_id: str, agent_id: str) -> Any:
    from lighthouse.push.models import ConnectionRecord

    return ConnectionRecord(
        connection_id=connection_id,
        agent_id=agent_id,
        role="agent",
        feeds=[f"agent:{agent_id}"],
        connected_at=time.time(),
        expires_at=int(time.time()) + 600,
    )


@pytest.fixture
def admin(new_agent: Callable[..., AgentClient]) -> Iterator[AgentClient]:
    operator = new_agent("admin")
    yield operator
    # Each test leaves the flags as it found them: none set, every flag at its declared default.
    current = operator.get("/flags").json()
    assert operator.put("/flags", {"flags": {}, "expected_version": current["version"]}).status_code == 200
    time.sleep(FLAGS_CACHE_SECONDS + 0.1)


def connect_status(cloud: LocalCloud, token: str) -> int:
    try:
        with socket(cloud, token):
            return 101
    except InvalidStatus as refused:
        return int(refused.response.status_code)


def test_a_flags_change_through_the_api_reaches_the_functions_within_the_cache_time(
    cloud: LocalCloud, admin: AgentClient, new_agent: Callable[..., AgentClient]
) -> None:
    chosen, other = new_agent(), new_agent()
    with cloud.reconfigured(LIGHTHOUSE_FLAGS_CACHE_SECONDS="1"):
        assert connect_status(cloud, other.token) == 101
        # WHEN push is turned off for everyone but one named agent
        only_chosen = {"default": False, "rules": {"pilot": {"when_match": True, "conditions": [
            {"action": "IN", "key": "agent_id", "value": [chosen.agent_id]}]}}}  # fmt: skip
        changed = admin.put("/flags", {"flags": {"websocket_push": only_chosen}})
        assert changed.status_code == 200, changed.text
        assert changed.json()["version"] >= 1
        assert changed.json()["changed_by"] == admin.agent_id
        changed_at = time.monotonic()
        # THEN within the cache time (1 s here) the others' connects are refused with 403
        eventually(lambda: connect_status(cloud, other.token) == 403, timeout=5)
        assert time.monotonic() - changed_at <= 1.0 + 1.5
        assert connect_status(cloud, chosen.token) == 101
        assert admin.get(f"/flags/websocket_push/evaluation?agent_id={other.agent_id}").json()["enabled"] is False
        # WHEN it is rolled out to 100 %, THEN everyone connects again
        rolled = admin.post("/flags/websocket_push/rollout", {"percent": 100})
        assert rolled.status_code == 200, rolled.text
        eventually(lambda: connect_status(cloud, other.token) == 101, timeout=5)


def test_flag_changes_are_admin_only_validated_and_recorded(
    cloud: LocalCloud, admin: AgentClient, new_agent: Callable[..., AgentClient], parts: Components
) -> None:
    agent = new_agent()
    assert agent.get("/flags").status_code == 403
    assert agent.put("/flags", {"flags": {}}).status_code == 403
    assert agent.get(f"/flags/websocket_push/evaluation?agent_id={admin.agent_id}").status_code == 403
    assert agent.get("/flags/websocket_push/evaluation").json() == {
        "flag": "websocket_push", "agent_id": agent.agent_id, "role": "agent", "enabled": True,
    }  # fmt: skip
    before = admin.get("/flags").json()
    bad = admin.put("/flags", {"flags": {"websocket_push": {"default": "sometimes"}}})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["violations"][0]["path"] == "$.websocket_push.default"
    stale = admin.put("/flags", {"flags": {}, "expected_version": before["version"] + 7})
    assert stale.status_code == 409
    assert admin.post("/flags/no_such_flag/rollout", {"percent": 10}).status_code == 404
    assert admin.post("/flags/websocket_push/rollout", {"percent": 101}).status_code == 422
    assert admin.get("/flags").json()["version"] == before["version"]  # nothing refused was recorded
    assert admin.post("/flags/websocket_push/rollout", {"percent": 30}).status_code == 200
    latest = parts.events.load("flags#document", before["version"] + 1)
    assert [s.event.model_dump()["changed"] for s in latest] == [["websocket_push"]]
    assert latest[0].metadata["principal"] == admin.agent_id


def test_requests_do_not_fail_while_the_flag_store_is_unreachable(
    cloud: LocalCloud, admin: AgentClient, new_agent: Callable[..., AgentClient]
) -> None:
    # GIVEN push is off for everyone in the document
    assert admin.put("/flags", {"flags": {"websocket_push": {"default": False}}}).status_code == 200
    agent = new_agent()
    # WHEN the functions read their flags from a store that does not answer (AppConfig, which the
    # embedded cloud has no data plane for)
    with cloud.reconfigured(LIGHTHOUSE_FLAGS_STORE="appconfig", LIGHTHOUSE_FLAGS_APPLICATION="gone"):
        # THEN connects and gate decisions still work, on the declared defaults
        assert connect_status(cloud, agent.token) == 101
        decided = agent.post("/validate", {"tool_name": "Write", "tool_input": {"file_path": "/etc/passwd",
                             "content": "x"}, "context": {"cwd": "/tmp/project"}})  # fmt: skip
        assert decided.status_code == 200, decided.text
        assert decided.json()["decision"] == "blocked"
    # and once the store is back, the document applies again
    eventually(lambda: connect_status(cloud, agent.token) == 403, timeout=10)


def test_an_agent_holds_at_most_ten_connections(cloud: LocalCloud, new_agent: Callable[..., AgentClient]) -> None:
    agent = new_agent()
    with ExitStack() as stack:
        for _ in range(10):
            stack.enter_context(socket(cloud, agent.token))
        assert connect_status(cloud, agent.token) == 429
    eventually(lambda: connect_status(cloud, agent.token) == 101)  # closed ones no longer count
