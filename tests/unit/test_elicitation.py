"""Elicitation logic: schema limits, signatures, state transitions, rate limits (emulator in-process)."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from lighthouse.agents.models import AgentRegistered
from lighthouse.auth.nonces import NonceStore
from lighthouse.auth.tokens import Principal
from lighthouse.clock import FixedClock
from lighthouse.elicitation import schemas
from lighthouse.elicitation.logic import ElicitationMetricsProjection, latency_bucket, latency_percentiles
from lighthouse.elicitation.models import CreateElicitation, RespondToElicitation
from lighthouse.elicitation.service import ElicitationLimits, ElicitationService
from lighthouse.elicitation.signing import response_key, sign_response, verify_response
from lighthouse.elicitation.store import ElicitationRecords
from lighthouse.errors import (
    Conflict,
    Forbidden,
    MalformedRequest,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ValidationFailed,
)
from lighthouse.events import EventStore, Projector, ReadModelStore
from lighthouse.ratelimit import Limit, TokenBucketLimiter
from tests.conftest import TEST_MASTER_SECRET, Provisioned

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}, "required": ["n"]}

# ---- schemas --------------------------------------------------------------------------------------


def nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth - 1):
        schema = {"type": "array", "items": schema}
    return schema


def test_schema_limits() -> None:
    schemas.check_schema(nested(16))
    with pytest.raises(ValidationFailed, match="32"):
        schemas.check_schema(nested(40))
    with pytest.raises(PayloadTooLarge):
        schemas.check_schema({"type": "object", "description": "x" * 16_500})
    with pytest.raises(ValidationFailed, match="not valid JSON Schema"):
        schemas.check_schema({"type": 12})
    with pytest.raises(ValidationFailed, match="local references"):
        schemas.check_schema({"$ref": "http://evil.example/schema"})
    schemas.check_schema({"$defs": {"n": {"type": "integer"}}, "$ref": "#/$defs/n"})


def test_message_and_data_limits() -> None:
    schemas.check_message("m" * 4096)
    with pytest.raises(PayloadTooLarge):
        schemas.check_message("m" * 4097)
    with pytest.raises(PayloadTooLarge):
        schemas.check_data_size({"blob": "x" * 70_000})


def test_violations_name_every_failing_path() -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["n", "id"],
        "additionalProperties": False,
    }
    found = schemas.violations(schema, {"n": "1", "tags": ["a", 2], "extra": True})
    assert {v["path"] for v in found} == {"$", "$.n", "$.tags[1]"}
    assert schemas.violations(SCHEMA, {"n": 3}) == []


@pytest.mark.parametrize(
    ("schema", "flat"),
    [
        ({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "boolean"}}}, True),
        ({"type": "object", "properties": {"c": {"type": "string", "enum": ["x", "y"]}}, "required": ["c"]}, True),
        ({"type": "object", "properties": {"a": {"type": "object"}}}, False),
        ({"type": "object", "properties": {"a": {"type": "array"}}}, False),
        ({"type": "string"}, False),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "oneOf": []}, False),
    ],
)
def test_flat_form_subset(schema: dict[str, Any], flat: bool) -> None:
    assert schemas.is_flat_form(schema) is flat


# ---- signatures -----------------------------------------------------------------------------------


def test_a_signed_response_verifies_and_any_change_breaks_it() -> None:
    key = response_key(TEST_MASTER_SECRET, "e1", "salt")
    response = {
        "responder": "bob",
        "action": "accept",
        "data": {"n": 1},
        "responded_at_ms": 1_700_000_000_000,
        "signature": sign_response(key, "e1", "bob", "accept", {"n": 1}, 1_700_000_000_000),
    }
    assert verify_response(key, response, "e1")
    for change in ({"responder": "mallory"}, {"action": "decline"}, {"data": {"n": 2}}, {"responded_at_ms": 1}):
        assert not verify_response(key, {**response, **change}, "e1")
    assert not verify_response(key, response, "e2")
    assert not verify_response(response_key(TEST_MASTER_SECRET, "e1", "other"), response, "e1")


# ---- histogram --------------------------------------------------------------------------------------


def test_latency_buckets_and_percentiles() -> None:
    assert latency_bucket(3) == "le_5"
    assert latency_bucket(5) == "le_5"
    assert latency_bucket(7) == "le_10"
    assert latency_bucket(10**8) == "le_inf"
    counters = {"latency_le_10": 50, "latency_le_100": 45, "latency_le_1000": 5}
    assert latency_percentiles(counters) == {"p50_ms": 10, "p95_ms": 100, "p99_ms": 1000}
    assert latency_percentiles({}) == {"p50_ms": None, "p95_ms": None, "p99_ms": None}


# ---- the service ------------------------------------------------------------------------------------


class RecordingTaskTokens:
    """Stands in for Step Functions: records what the service asked for."""

    def __init__(self) -> None:
        self.started: list[tuple[str, dict[str, Any]]] = []
        self.recorded: dict[str, str] = {}
        self.resumed: list[tuple[str, dict[str, Any]]] = []

    def start(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> None:
        self.started.append((name, payload))

    def record(self, wait_id: str, task_token: str, expires_at: float) -> None:
        self.recorded[wait_id] = task_token

    def resume(self, task_token: str, output: dict[str, Any]) -> bool:
        self.resumed.append((task_token, output))
        return True

    def resume_wait(self, wait_id: str, output: dict[str, Any]) -> bool:
        token = self.recorded.get(wait_id)
        return self.resume(token, output) if token else False


class World:
    def __init__(self, provisioned: Provisioned) -> None:
        dynamodb = provisioned.client("dynamodb")
        self.clock = FixedClock()
        self.events = EventStore.dynamodb(
            dynamodb, provisioned.name("LIGHTHOUSE_EVENTS_TABLE"), provisioned.name("LIGHTHOUSE_SNAPSHOTS_TABLE")
        )
        self.read_models = ReadModelStore(dynamodb, provisioned.name("LIGHTHOUSE_READ_MODELS_TABLE"))
        self.tokens = RecordingTaskTokens()
        self.limiter = TokenBucketLimiter(dynamodb, provisioned.name("LIGHTHOUSE_RATE_LIMITS_TABLE"), self.clock)
        self.records = ElicitationRecords(
            dynamodb, provisioned.name("LIGHTHOUSE_READ_MODELS_TABLE"), provisioned.name("LIGHTHOUSE_EVENTS_TABLE")
        )
        self.service = ElicitationService(
            events=self.events,
            read_models=self.read_models,
            records=self.records,
            nonces=NonceStore(dynamodb, provisioned.name("LIGHTHOUSE_NONCES_TABLE")),
            limiter=self.limiter,
            task_tokens=self.tokens,  # type: ignore[arg-type]
            state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:test",
            master_secret=TEST_MASTER_SECRET,
            clock=self.clock,
            limits=ElicitationLimits(creates=Limit(10, 3), responses=Limit(20, 3)),
            wait_for_change=self.advance_instead_of_waiting,
        )
        self.projector = Projector(self.events, self.read_models, [], counters=[ElicitationMetricsProjection()])
        for agent_id in ("alice", "bob", "carol"):
            registered = AgentRegistered(agent_id=agent_id, role="agent", salt="s", registered_at=0.0)
            self.events.append(f"agent#{agent_id}", [registered], expected_version=0)
        self.alice = Principal("alice", "agent", 0, 2**40, "t1")
        self.bob = Principal("bob", "agent", 0, 2**40, "t2")
        self.carol = Principal("carol", "agent", 0, 2**40, "t3")

    def advance_instead_of_waiting(self, topic: str, seen: int, timeout: float) -> int:
        self.clock.advance(timeout)
        return seen

    def ask(self, timeout: int = 60, **extra: Any) -> str:
        request = CreateElicitation(to_agent="bob", message="n?", schema=SCHEMA, timeout_seconds=timeout, **extra)
        return self.service.create(self.alice, request).elicitation_id

    def respond(self, elicitation_id: str, who: Principal | None = None, **body: Any) -> Any:
        request = RespondToElicitation(
            elicitation_id=elicitation_id,
            action=body.pop("action", "accept"),
            data=body.pop("data", {"n": 1}),
            nonce=body.pop("nonce", secrets.token_hex(16)),
        )
        return self.service.respond(who or self.bob, request)

    def project(self, elicitation_id: str) -> None:
        self.projector.project(self.events.load(f"elicitation#{elicitation_id}"))

    def types(self, elicitation_id: str) -> list[str]:
        return [e.type for e in self.events.load(f"elicitation#{elicitation_id}")]


@pytest.fixture
def world(provisioned: Provisioned) -> World:
    return World(provisioned)


def test_requested_then_accepted(world: World) -> None:
    elicitation_id = world.ask()
    world.project(elicitation_id)
    assert [p.elicitation_id for p in world.service.pending(world.bob, 10, None).elicitations] == [elicitation_id]

    world.clock.advance(2)
    result = world.respond(elicitation_id, data={"n": 7})
    world.project(elicitation_id)

    assert result.status == "accepted"
    assert world.types(elicitation_id) == ["ELICITATION_REQUESTED", "ELICITATION_ACCEPTED"]
    assert world.service.pending(world.bob, 10, None).elicitations == []
    view = world.service.status(world.alice, elicitation_id)
    assert view.response is not None
    assert (view.status, view.response.data, view.response.latency_ms) == ("accepted", {"n": 7}, 2000.0)
    metrics = world.service.metrics()
    assert metrics.counts["accepted"] == 1
    assert metrics.answer_latency_ms["p50_ms"] == 2500


def test_a_second_answer_and_an_answer_after_expiry_get_409(world: World) -> None:
    answered, late = world.ask(), world.ask(timeout=5)
    world.respond(answered)
    with pytest.raises(Conflict, match="already accepted"):
        world.respond(answered, action="decline", data=None)

    world.clock.advance(5)
    with pytest.raises(Conflict, match="expired"):
        world.respond(late)
    assert world.types(late) == ["ELICITATION_REQUESTED"]


def test_only_the_target_answers_and_intruders_are_recorded(world: World) -> None:
    elicitation_id = world.ask()

    with pytest.raises(Forbidden):
        world.respond(elicitation_id, who=world.carol)
    with pytest.raises(Forbidden):
        world.respond(elicitation_id, who=world.alice)

    assert world.types(elicitation_id) == ["ELICITATION_REQUESTED"]
    recorder = world.events.recorder
    violations = recorder._client.scan(TableName=recorder._events)["Items"]  # type: ignore[attr-defined]
    kinds = [i["type"]["S"] for i in violations if i["stream_id"]["S"].startswith("violation#")]
    assert kinds == ["ELICITATION_SECURITY_VIOLATION"] * 2


def test_invalid_data_stores_nothing_not_even_the_nonce(world: World) -> None:
    elicitation_id = world.ask()
    nonce = secrets.token_hex(16)

    with pytest.raises(ValidationFailed) as raised:
        world.respond(elicitation_id, data={"n": -1}, nonce=nonce)

    assert raised.value.details["violations"][0]["path"] == "$.n"
    assert world.types(elicitation_id) == ["ELICITATION_REQUESTED"]
    assert world.respond(elicitation_id, data={"n": 0}, nonce=nonce).status == "accepted"


def test_cancel_is_for_the_requester_and_only_while_open(world: World) -> None:
    elicitation_id = world.ask()
    with pytest.raises(Forbidden):
        world.service.cancel(world.bob, elicitation_id)

    assert world.service.cancel(world.alice, elicitation_id).status == "cancelled"
    with pytest.raises(Conflict):
        world.service.cancel(world.alice, elicitation_id)
    with pytest.raises(Conflict):
        world.respond(elicitation_id)


def test_creates_are_rate_limited_at_ten_a_minute_with_a_burst_of_three(world: World) -> None:
    for _ in range(3):
        world.ask()
    with pytest.raises(RateLimited) as limited:
        world.ask()
    assert limited.value.retry_after_seconds == 6
    world.clock.advance(6)
    world.ask()


def test_the_status_wait_returns_as_soon_as_the_elicitation_ends(world: World) -> None:
    elicitation_id = world.ask()
    assert world.service.status(world.alice, elicitation_id, wait_seconds=0).status == "pending"
    with pytest.raises(ValidationFailed):
        world.service.status(world.alice, elicitation_id, wait_seconds=21)
    with pytest.raises(Forbidden):
        world.service.status(world.carol, elicitation_id)


def test_dispatch_starts_the_timer_with_what_is_left_and_the_answer_resumes_it(world: World) -> None:
    elicitation_id = world.ask(timeout=30)
    requested = world.events.load(f"elicitation#{elicitation_id}")[0]
    world.clock.advance(10)

    assert world.service.dispatch(requested) == "started"
    assert world.tokens.started == [(elicitation_id, {"elicitation_id": elicitation_id, "timeout_seconds": 20})]
    world.service.await_outcome(elicitation_id, "token-1")
    assert world.tokens.resumed == []

    world.respond(elicitation_id)  # the request that records the answer resumes the wait
    assert world.tokens.resumed == [("token-1", {"status": "accepted"})]
    accepted = world.events.load(f"elicitation#{elicitation_id}")[-1]
    assert world.service.dispatch(accepted) == "ignored"


def test_an_answer_before_the_token_is_recorded_resumes_at_once(world: World) -> None:
    elicitation_id = world.ask()
    world.respond(elicitation_id)

    world.service.await_outcome(elicitation_id, "late-token")

    assert world.tokens.resumed == [("late-token", {"status": "accepted"})]


def test_expire_marks_pending_ones_and_leaves_answered_ones(world: World) -> None:
    pending, answered = world.ask(), world.ask()
    world.respond(answered)

    assert world.service.expire(pending)["expired"] is True
    assert world.service.expire(answered)["expired"] is False
    assert world.service.expire(pending)["expired"] is False
    assert world.types(pending)[-1] == "ELICITATION_EXPIRED"
    assert world.service.expire("0" * 32) == {"elicitation_id": "0" * 32, "expired": False, "status": None}


def test_an_agent_cannot_elicit_from_itself(world: World) -> None:
    with pytest.raises(ValidationFailed):
        world.service.create(world.bob, CreateElicitation(to_agent="bob", message="m", schema=SCHEMA))


@pytest.mark.parametrize(
    "body",
    [
        {"elicitation_id": "a" * 32, "action": "accept", "nonce": "ab" * 16},
        {"elicitation_id": "a" * 32, "action": "decline", "data": {"n": 1}, "nonce": "ab" * 16},
        {"elicitation_id": "a" * 32, "action": "accept", "data": {}, "nonce": "short"},
        {"elicitation_id": "not-an-id", "action": "accept", "data": {}, "nonce": "ab" * 16},
    ],
)
def test_malformed_responses_are_refused_by_the_model(body: dict[str, Any]) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        RespondToElicitation.model_validate(body)


def test_pending_can_wait_for_something_to_arrive(world: World) -> None:
    started = world.clock.now()
    assert world.service.pending(world.bob, 10, None, wait_seconds=3).elicitations == []
    assert world.clock.now() - started >= 3  # it waited (on the test clock) before answering empty
    with pytest.raises(ValidationFailed):
        world.service.pending(world.bob, 10, None, wait_seconds=25)


def test_an_answered_question_leaves_the_inbox_in_the_request_that_answers_it(world: World) -> None:
    first, second = world.ask(), world.ask()

    world.respond(first)

    assert [p.elicitation_id for p in world.service.pending(world.bob, 10, None).elicitations] == [second]


def test_after_a_cursor_only_new_questions_are_listed_and_waited_for(world: World) -> None:
    seen = world.ask()
    page = world.service.pending(world.bob, 10, None)
    assert [p.elicitation_id for p in page.elicitations] == [seen]

    started = world.clock.now()
    waited = world.service.pending(world.bob, 10, None, wait_seconds=3, after=page.cursor)
    assert waited.elicitations == []
    assert world.clock.now() - started >= 3  # it held the request although `seen` is still open

    world.clock.advance(0.001)
    new = world.ask()
    later = world.service.pending(world.bob, 10, None, wait_seconds=3, after=waited.cursor)
    assert [p.elicitation_id for p in later.elicitations] == [new]
    with pytest.raises(MalformedRequest):
        world.service.pending(world.bob, 10, None, after="bm90LWEtY3Vyc29y")


def test_a_question_committed_after_a_younger_one_is_not_skipped(world: World) -> None:
    older_id = world.ask()
    world.clock.advance(1)
    younger_id = world.ask()
    cursor = world.service.pending(world.bob, 10, None).cursor
    # As if a third question, stamped before `younger`, committed only now.
    world.clock.advance(-0.5)
    late = world.ask()

    listed = world.service.pending(world.bob, 10, None, after=cursor).elicitations

    assert [p.elicitation_id for p in listed] == [late]
    assert older_id != younger_id


def test_a_question_to_an_unregistered_agent_is_404_and_stores_nothing(world: World) -> None:
    request = CreateElicitation(to_agent="nobody", message="?", schema=SCHEMA)
    with pytest.raises(NotFound, match="not registered"):
        world.service.create(world.alice, request)

    recorder = world.events.recorder
    items = recorder._client.scan(TableName=recorder._events)["Items"]  # type: ignore[attr-defined]
    assert not [i for i in items if i["stream_id"]["S"].startswith("elicitation#")]


def test_a_replayed_nonce_is_refused_and_records_nothing(world: World) -> None:
    first, second = world.ask(), world.ask()
    nonce = secrets.token_hex(16)
    world.respond(first, nonce=nonce)

    with pytest.raises(Conflict) as replayed:
        world.respond(second, nonce=nonce)

    assert replayed.value.code == "REPLAY_DETECTED"
    assert world.types(second) == ["ELICITATION_REQUESTED"]
    assert world.service.status(world.bob, second).status == "pending"
