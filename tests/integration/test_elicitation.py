"""Elicitation on the local cloud: the whole lifecycle over HTTP, deadlines on Step Functions, races,
duplicate deliveries and projector crashes."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from lighthouse.composition import Components
from lighthouse.elicitation.logic import ElicitationMetricsProjection
from lighthouse.elicitation.signing import verify_response
from lighthouse_tools.localcloud.cloud import LocalCloud
from tests.integration.conftest import AgentClient, eventually

pytestmark = pytest.mark.integration

SCHEMA = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "reason": {"type": "string", "maxLength": 200}},
    "required": ["approved"],
}


def ask(requester: AgentClient, target: AgentClient, **overrides: Any) -> dict[str, Any]:
    body = {"to_agent": target.agent_id, "message": "May I deploy?", "schema": SCHEMA, **overrides}
    response = requester.post("/elicitation/create", body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def answer(agent: AgentClient, elicitation_id: str, action: str = "accept", data: Any = None) -> Any:
    body: dict[str, Any] = {"elicitation_id": elicitation_id, "action": action, "nonce": secrets.token_hex(16)}
    if action == "accept":
        body["data"] = {"approved": True} if data is None else data
    return agent.post("/elicitation/respond", body)


def pending_ids(agent: AgentClient) -> list[str]:
    return [e["elicitation_id"] for e in agent.get("/elicitation/pending").json()["elicitations"]]


def execution_status(cloud: LocalCloud, elicitation_id: str) -> str:
    assert cloud.stack is not None
    machine = cloud.stack.resolver.physical_ids["ElicitationStateMachine"]
    arn = machine.replace(":stateMachine:", ":execution:") + f":{elicitation_id}"
    try:
        return str(cloud.client("stepfunctions").describe_execution(executionArn=arn)["status"])
    except Exception:
        return "MISSING"


def test_the_full_lifecycle_ends_with_a_signed_answer_and_a_finished_execution(
    cloud: LocalCloud, new_agent: Callable[..., AgentClient]
) -> None:
    requester, target = new_agent(), new_agent()
    created = ask(requester, target, priority="urgent")

    eventually(lambda: created["elicitation_id"] in pending_ids(target))
    eventually(lambda: execution_status(cloud, created["elicitation_id"]) == "RUNNING")
    response = answer(target, created["elicitation_id"], data={"approved": True, "reason": "tests pass"})
    assert response.status_code == 200, response.text

    status = requester.get(f"/elicitation/status/{created['elicitation_id']}?wait=10").json()
    assert status["status"] == "accepted"
    assert status["response"]["data"] == {"approved": True, "reason": "tests pass"}
    assert verify_response(created["response_key"], status["response"], created["elicitation_id"])
    tampered = {**status["response"], "data": {"approved": False}}
    assert not verify_response(created["response_key"], tampered, created["elicitation_id"])
    # The target sees the status but not the signed response; pending no longer lists it.
    assert target.get(f"/elicitation/status/{created['elicitation_id']}").json()["response"] is None
    eventually(lambda: created["elicitation_id"] not in pending_ids(target))
    eventually(lambda: execution_status(cloud, created["elicitation_id"]) == "SUCCEEDED")


def test_expiry_fires_at_the_deadline(cloud: LocalCloud, new_agent: Callable[..., AgentClient]) -> None:
    requester, target = new_agent(), new_agent()
    created = ask(requester, target, timeout_seconds=1)

    status = requester.get(f"/elicitation/status/{created['elicitation_id']}?wait=10").json()

    assert status["status"] == "expired"
    assert 1.0 <= status["finished_at"] - status["created_at"] < 4.0
    late = answer(target, created["elicitation_id"])
    assert late.status_code == 409
    assert late.json()["error"]["details"]["status"] == "expired"


def test_a_cancel_ends_the_wait_and_later_answers_get_409(
    cloud: LocalCloud, new_agent: Callable[..., AgentClient]
) -> None:
    requester, target = new_agent(), new_agent()
    created = ask(requester, target)
    eventually(lambda: execution_status(cloud, created["elicitation_id"]) == "RUNNING")

    assert target.post(f"/elicitation/{created['elicitation_id']}/cancel", {}).status_code == 403
    cancelled = requester.post(f"/elicitation/{created['elicitation_id']}/cancel", {})

    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert answer(target, created["elicitation_id"]).status_code == 409
    assert requester.post(f"/elicitation/{created['elicitation_id']}/cancel", {}).status_code == 409
    eventually(lambda: execution_status(cloud, created["elicitation_id"]) == "SUCCEEDED")


def test_fifty_concurrent_responders_exactly_one_wins(
    parts: Components, cloud: LocalCloud, new_agent: Callable[..., AgentClient]
) -> None:
    requester, target = new_agent(), new_agent()
    created = ask(requester, target)
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(50)

    def respond(index: int) -> None:
        start.wait()
        response = answer(target, created["elicitation_id"], data={"approved": index % 2 == 0})
        with lock:
            statuses.append(response.status_code)

    # 50 answers from one agent need a bucket that holds them; the limit itself is tested elsewhere.
    relaxed = {"LIGHTHOUSE_ELICITATION_RESPONSES_PER_MINUTE": "10000", "LIGHTHOUSE_ELICITATION_BURST": "100"}
    with cloud.reconfigured(**relaxed):
        threads = [threading.Thread(target=respond, args=(i,)) for i in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert sorted(statuses) == [200] + [409] * 49
    events = parts.events.load(f"elicitation#{created['elicitation_id']}")
    assert [e.type for e in events] == ["ELICITATION_REQUESTED", "ELICITATION_ACCEPTED"]


def test_a_third_agent_cannot_answer_and_is_recorded_as_a_violation(
    cloud: LocalCloud, new_agent: Callable[..., AgentClient]
) -> None:
    requester, target, intruder = new_agent(), new_agent(), new_agent()
    created = ask(requester, target)
    before = requester.get("/elicitation/metrics").json()["security_violations"]

    forged = answer(intruder, created["elicitation_id"])

    assert forged.status_code == 403
    assert intruder.get(f"/elicitation/status/{created['elicitation_id']}").status_code == 403
    eventually(lambda: requester.get("/elicitation/metrics").json()["security_violations"] == before + 1)
    assert requester.get(f"/elicitation/status/{created['elicitation_id']}").json()["status"] == "pending"


def test_invalid_data_is_422_with_paths_and_stores_nothing(
    parts: Components, cloud: LocalCloud, new_agent: Callable[..., AgentClient]
) -> None:
    requester, target = new_agent(), new_agent()
    created = ask(requester, target)

    response = answer(target, created["elicitation_id"], data={"approved": "yes", "reason": "x" * 300})

    assert response.status_code == 422
    paths = {v["path"] for v in response.json()["error"]["details"]["violations"]}
    assert paths == {"$.approved", "$.reason"}
    assert len(parts.events.load(f"elicitation#{created['elicitation_id']}")) == 1
    assert answer(target, created["elicitation_id"]).status_code == 200  # still answerable


def test_a_replayed_response_nonce_is_rejected(cloud: LocalCloud, new_agent: Callable[..., AgentClient]) -> None:
    requester, target = new_agent(), new_agent()
    first, second = ask(requester, target), ask(requester, target)
    nonce = secrets.token_hex(16)
    body = {"action": "accept", "data": {"approved": True}, "nonce": nonce}

    assert target.post("/elicitation/respond", {**body, "elicitation_id": first["elicitation_id"]}).status_code == 200
    replay = target.post("/elicitation/respond", {**body, "elicitation_id": second["elicitation_id"]})

    assert replay.status_code == 409
    assert replay.json()["error"]["code"] == "REPLAY_DETECTED"


def test_the_same_idempotency_key_and_body_returns_the_same_elicitation(
    cloud: LocalCloud, new_agent: Callable[..., AgentClient]
) -> None:
    requester, target = new_agent(), new_agent()
    body = {"to_agent": target.agent_id, "message": "once", "schema": SCHEMA}
    headers = {"Idempotency-Key": f"key-{secrets.token_hex(4)}"}

    first = requester.http.post(f"{requester.api_url}/elicitation/create", json=body, headers=headers, timeout=10)
    again = requester.http.post(f"{requester.api_url}/elicitation/create", json=body, headers=headers, timeout=10)
    changed = requester.http.post(
        f"{requester.api_url}/elicitation/create", json={**body, "message": "twice"}, headers=headers, timeout=10
    )

    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json() == again.json()
    assert changed.status_code == 409
    eventually(lambda: pending_ids(target) == [first.json()["elicitation_id"]])


def test_pending_lists_urgent_first_then_oldest_and_paginates(
    cloud: LocalCloud, new_agent: Callable[..., AgentClient]
) -> None:
    requesters, target = [new_agent() for _ in range(4)], new_agent()
    normal_old = ask(requesters[0], target)["elicitation_id"]
    urgent_old = ask(requesters[1], target, priority="urgent")["elicitation_id"]
    normal_new = ask(requesters[2], target)["elicitation_id"]
    urgent_new = ask(requesters[3], target, priority="urgent")["elicitation_id"]
    expected = [urgent_old, urgent_new, normal_old, normal_new]
    eventually(lambda: pending_ids(target) == expected)

    first = target.get("/elicitation/pending?limit=3").json()
    second = target.get(f"/elicitation/pending?limit=3&next_token={first['next_token']}").json()

    assert [e["elicitation_id"] for e in first["elicitations"]] == expected[:3]
    assert [e["elicitation_id"] for e in second["elicitations"]] == expected[3:]
    assert second["next_token"] is None
    assert target.get("/elicitation/pending?next_token=garbage").status_code == 400


def test_creates_over_the_limit_get_429_and_are_counted(
    cloud: LocalCloud, new_agent: Callable[..., AgentClient]
) -> None:
    requester, target = new_agent(), new_agent()
    statuses = [
        requester.post(
            "/elicitation/create", {"to_agent": target.agent_id, "message": "m", "schema": SCHEMA}
        ).status_code
        for _ in range(4)
    ]

    assert statuses == [201, 201, 201, 429]
    assert requester.get("/elicitation/metrics").json()["rate_limit_rejections"]["create"] >= 1


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"schema": {"type": "object", "properties": {"x": {"type": "nope"}}}}, 422, "VALIDATION_ERROR"),
        ({"schema": {"type": "object", "description": "x" * 17_000}}, 413, "PAYLOAD_TOO_LARGE"),
        ({"message": "m" * 5000}, 413, "PAYLOAD_TOO_LARGE"),
        ({"timeout_seconds": 86_401}, 422, "VALIDATION_ERROR"),
        ({"priority": "asap"}, 422, "VALIDATION_ERROR"),
        ({"schema": {"$ref": "https://example.com/schema.json"}}, 422, "VALIDATION_ERROR"),
    ],
)
def test_bad_questions_are_refused_and_store_nothing(
    cloud: LocalCloud, new_agent: Callable[..., AgentClient], overrides: dict[str, Any], status: int, code: str
) -> None:
    requester, target = new_agent(), new_agent()
    body = {"to_agent": target.agent_id, "message": "m", "schema": SCHEMA, **overrides}

    response = requester.post("/elicitation/create", body)

    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    cloud.wait_for_projection()
    assert pending_ids(target) == []


def test_a_schema_nested_too_deep_is_refused(cloud: LocalCloud, new_agent: Callable[..., AgentClient]) -> None:
    requester, target = new_agent(), new_agent()
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(40):
        schema = {"type": "array", "items": schema}

    response = requester.post("/elicitation/create", {"to_agent": target.agent_id, "message": "m", "schema": schema})

    assert response.status_code == 422
    assert "32" in response.json()["error"]["message"]


def test_a_projector_crash_mid_batch_then_retry_leaves_the_read_models_right(
    parts: Components, cloud: LocalCloud, new_agent: Callable[..., AgentClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    requester, target = new_agent(), new_agent()
    cloud.wait_for_projection()
    original = ElicitationMetricsProjection.increments
    crashes = {"left": 1}
    before = parts.read_models.counters("metrics", "elicitation").get("status_accepted", 0)

    def flaky(self: ElicitationMetricsProjection, event: Any) -> Any:
        if event.type == "ELICITATION_ACCEPTED" and crashes["left"]:
            crashes["left"] -= 1
            raise RuntimeError("crash in the middle of the batch")
        return original(self, event)

    monkeypatch.setattr(ElicitationMetricsProjection, "increments", flaky)
    created = ask(requester, target)
    eventually(lambda: created["elicitation_id"] in pending_ids(target))
    answer(target, created["elicitation_id"])

    eventually(lambda: parts.read_models.counters("metrics", "elicitation").get("status_accepted", 0) == before + 1)
    assert crashes["left"] == 0
    assert (parts.read_models.get("elicitations", created["elicitation_id"]).body or {})["status"] == "accepted"
    cloud.wait_for_projection()
    counters = parts.read_models.counters("metrics", "elicitation")
    assert counters["status_pending"] == counters["requested"] - sum(
        v for k, v in counters.items() if k.startswith("status_") and k != "status_pending"
    )


def test_duplicated_stream_deliveries_change_nothing(
    parts: Components, cloud: LocalCloud, new_agent: Callable[..., AgentClient]
) -> None:
    requester, target = new_agent(), new_agent()
    created = ask(requester, target)
    answer(target, created["elicitation_id"])
    eventually(lambda: execution_status(cloud, created["elicitation_id"]) == "SUCCEEDED")
    cloud.wait_for_projection()
    document = parts.read_models.get("elicitations", created["elicitation_id"])
    counters = parts.read_models.counters("metrics", "elicitation")

    streams = cloud.client("dynamodbstreams")
    arn = cloud.stream_poller().source.stream_arn
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    records: list[dict[str, Any]] = []
    while iterator:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        records += page["Records"]
        iterator = page.get("NextShardIterator") if page["Records"] else None
    mine = [
        {**r, "dynamodb": {**r["dynamodb"], "ApproximateCreationDateTime": 0}}
        for r in records
        if r["dynamodb"]["Keys"]["stream_id"]["S"] == f"elicitation#{created['elicitation_id']}"
    ]
    assert cloud.runtime is not None
    for function in ("ProjectorFunction", "ElicitationDispatchFunction", "ProjectorFunction"):
        result = cloud.runtime.invoke(function, {"Records": mine})
        assert result.payload == {"batchItemFailures": []}, result

    again = parts.read_models.get("elicitations", created["elicitation_id"])
    assert (again.revision, again.body) == (document.revision, document.body)
    assert parts.read_models.counters("metrics", "elicitation") == counters
    assert execution_status(cloud, created["elicitation_id"]) == "SUCCEEDED"


def test_a_malformed_idempotency_key_is_400_and_creates_nothing(
    cloud: LocalCloud, new_agent: Callable[..., AgentClient]
) -> None:
    requester, target = new_agent(), new_agent()
    body = {"to_agent": target.agent_id, "message": "m", "schema": SCHEMA}

    response = requester.http.post(
        f"{requester.api_url}/elicitation/create", json=body, headers={"Idempotency-Key": "k" * 300}, timeout=10
    )

    assert (response.status_code, response.json()["error"]["code"]) == (400, "BAD_REQUEST")
    cloud.wait_for_projection()
    assert pending_ids(target) == []


def test_over_http_an_answered_question_is_gone_at_once_and_after_waits_for_new_ones(
    new_agent: Callable[..., AgentClient],
) -> None:
    requester, target = new_agent(), new_agent()
    first = ask(requester, target)["elicitation_id"]
    page = target.get("/elicitation/pending").json()
    assert [e["elicitation_id"] for e in page["elicitations"]] == [first]

    assert answer(target, first).status_code == 200
    assert target.get("/elicitation/pending").json()["elicitations"] == []  # no lag: gone with the answer

    began = time.monotonic()
    held = target.get(f"/elicitation/pending?wait=1&after={page['cursor']}").json()
    assert held["elicitations"] == []
    assert time.monotonic() - began >= 0.9
    second = ask(requester, target)["elicitation_id"]
    newer = target.get(f"/elicitation/pending?wait=5&after={held['cursor']}").json()
    assert [e["elicitation_id"] for e in newer["elicitations"]] == [second]
    assert target.get("/elicitation/pending?after=not*a*cursor").status_code == 400
