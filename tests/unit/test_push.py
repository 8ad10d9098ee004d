"""Real-time delivery, without a network: envelopes, routing, feed order on the client, tokens."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from lighthouse.elicitation.models import ElicitationAccepted, ElicitationExpired, ElicitationRequested, SignedResponse
from lighthouse.errors import Unauthenticated
from lighthouse.events.model import StoredEvent
from lighthouse.events.types import Event, decode
from lighthouse.fleet.models import FleetPresenceChanged
from lighthouse.pipelines.models import StageFinished, TaskCreated
from lighthouse.push import logic
from lighthouse.push.models import Envelope
from lighthouse.push.service import SUBPROTOCOL, token_of
from lighthouse.validation.models import ValidationCompleted
from lighthouse_tools.event_schemas import render_contracts
from lighthouse_tools.push_client import GAP_WAIT_SECONDS, FeedOrder
from lighthouse_tools.template import load_template
from tests.unit.test_template import resources_of

ROOT = Path(__file__).resolve().parents[2]
ENVELOPE_SCHEMA = json.loads((ROOT / "schemas" / "notifications" / "envelope.json").read_text())
FIXTURES = ROOT / "tests" / "fixtures" / "events"


def stored(stream_id: str, event: Event, version: int = 1) -> StoredEvent:
    return StoredEvent(stream_id, version, event, uuid.uuid4().hex, 1_800_000_000.0)


def fixture(type_name: str, **changes: Any) -> Event:
    data = json.loads((FIXTURES / type_name / "v1.json").read_text())
    data.update(changes)
    return decode(type_name, 1, data)


def nobody(stream_id: str) -> logic.Participants:
    return logic.Participants()


def requested_by(requester: str, owner: str | None = None) -> logic.Lookup:
    return lambda stream_id: logic.Participants(requester=requester, owner=owner)


def as_envelopes(notifications: list[Any]) -> list[dict[str, Any]]:
    return [
        Envelope(**notification.model_dump(), seq=index).model_dump(mode="json")
        for index, notification in enumerate(notifications, start=1)
    ]


def test_the_published_envelope_and_flags_schemas_are_in_step_with_the_models() -> None:
    for path, content in render_contracts().items():
        assert path.read_text() == content, (
            f"{path}: run python -c 'from lighthouse_tools.event_schemas import write; write()'"
        )


def test_a_question_goes_to_its_target_and_a_vote_request_says_so() -> None:
    question = fixture("ELICITATION_REQUESTED", from_agent="alice", to_agent="bob")
    assert isinstance(question, ElicitationRequested)
    (note,) = logic.route(stored(f"elicitation#{question.elicitation_id}", question), nobody)
    assert (note.feed, note.type, note.id) == ("agent:bob", "elicitation.requested", question.elicitation_id)
    assert note.summary["from_agent"] == "alice"
    assert note.link == f"/elicitation/status/{question.elicitation_id}"
    assert "schema" not in note.summary
    assert "salt" not in note.summary
    vote = question.model_copy(update={"managed_by": "validation#" + "a" * 32})
    assert logic.route(stored("elicitation#x", vote), nobody)[0].type == "validation.vote_requested"


def test_an_answer_goes_to_the_requester_with_its_signature_and_an_expiry_to_both() -> None:
    response = SignedResponse(
        action="accept", responder="bob", data={"ok": True}, data_hash="h", responded_at=1.0, responded_at_ms=1000,
        latency_ms=5.0, nonce="ab" * 16, signature="sig",
    )  # fmt: skip
    accepted = ElicitationAccepted(at=2.0, to_agent="bob", response=response)
    (note,) = logic.route(stored("elicitation#e1", accepted, 2), requested_by("alice"))
    assert (note.feed, note.type, note.version) == ("agent:alice", "elicitation.answered", 2)
    assert note.summary == {"status": "accepted", "responder": "bob", "signature": "sig"}
    expired = logic.route(
        stored("elicitation#e1", ElicitationExpired(at=3.0, to_agent="bob"), 2), requested_by("alice")
    )
    assert [n.feed for n in expired] == ["agent:bob", "agent:alice"]


def test_tasks_go_to_their_owner_gate_decisions_and_fleet_changes_to_the_admin_feeds() -> None:
    created = fixture("TASK_CREATED", owner="carol")
    assert isinstance(created, TaskCreated)
    assert logic.route(stored("task#t1", created), nobody)[0].feed == "agent:carol"
    finished = StageFinished(stage="review")
    (note,) = logic.route(stored("task#t1", finished, 4), requested_by("x", owner="carol"))
    assert (note.feed, note.type, note.summary) == (
        "agent:carol",
        "task.changed",
        {"event": "STAGE_FINISHED", "stage": "review"},
    )
    decided = fixture("VALIDATION_COMPLETED")
    assert isinstance(decided, ValidationCompleted)
    assert [n.feed for n in logic.route(stored("validation#v1", decided), nobody)] == ["gate"]
    presence = FleetPresenceChanged(state="offline", at=1.0)
    (fleet,) = logic.route(stored("fleet#agent-7", presence), nobody)
    assert (fleet.feed, fleet.link, fleet.summary["state"]) == ("fleet", "/fleet/agents/agent-7", "offline")


def test_events_no_one_is_told_about_make_no_notification() -> None:
    for type_name in ("AGENT_HEARTBEAT", "FLEET_SNAPSHOT_RECORDED", "LLM_CALLED", "FLAGS_CHANGED"):
        assert logic.route(stored("x#1", fixture(type_name)), nobody) == []


@pytest.mark.parametrize("type_name", sorted(logic.ROUTED_TYPES))
def test_every_routed_event_makes_envelopes_that_match_the_published_schema(type_name: str) -> None:
    kind = {"ELICITATION": "elicitation", "TASK": "task", "STAGE": "task", "RUN": "run", "VALIDATION": "validation"}
    stream = f"{kind.get(type_name.split('_')[0], 'fleet')}#obj-1"
    notes = logic.route(stored(stream, fixture(type_name), 3), requested_by("alice", owner="carol"))
    assert notes, f"{type_name} notifies no one"
    validator = Draft202012Validator(ENVELOPE_SCHEMA)
    for envelope in as_envelopes(notes):
        assert not list(validator.iter_errors(envelope)), envelope
        assert len(json.dumps(envelope)) < 1024  # small: the object itself is fetched over HTTP


def test_the_notifier_stream_filter_lists_exactly_the_routed_types() -> None:
    notifier = resources_of(load_template(), "AWS::Serverless::Function")["NotifierFunction"]
    (source,) = notifier["Properties"]["Events"].values()
    (pattern,) = [json.loads(f["Pattern"]) for f in source["Properties"]["FilterCriteria"]["Filters"]]
    assert sorted(pattern["dynamodb"]["NewImage"]["type"]["S"]) == sorted(logic.ROUTED_TYPES)
    assert "NOTIFICATION_RECORDED" not in logic.ROUTED_TYPES  # a feed's own event never loops back


def test_an_agent_reads_only_its_own_feed_and_admins_the_admin_feeds() -> None:
    assert logic.may_read("agent:a1", "a1", "agent")
    assert not logic.may_read("agent:a2", "a1", "agent")
    assert not logic.may_read("gate", "a1", "expert")
    assert logic.may_read("gate", "root", "admin")
    assert logic.may_read("fleet", "root", "admin")
    assert not logic.may_read("agent:../x", "root", "admin")
    assert not logic.may_read("other", "root", "admin")


def test_the_connect_token_comes_from_the_query_the_subprotocol_or_the_header() -> None:
    assert token_of({}, {"token": "lh1.a.b"}) == ("Bearer lh1.a.b", False)
    assert token_of({"Sec-WebSocket-Protocol": f"{SUBPROTOCOL}, lh1.a.b"}, {}) == ("Bearer lh1.a.b", True)
    assert token_of({"authorization": "Bearer lh1.c.d"}, {}) == ("Bearer lh1.c.d", False)
    with pytest.raises(Unauthenticated, match="no token"):
        token_of({"Sec-WebSocket-Protocol": f"{SUBPROTOCOL}, one, two"}, {})


def envelope(seq: int, feed: str = "agent:a") -> dict[str, Any]:
    return {"feed": feed, "seq": seq, "type": "task.changed", "id": "t", "version": seq}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=80), st.randoms())
def test_the_client_hands_each_seq_over_once_and_in_order_whatever_the_arrival(
    seqs: list[int], shuffle: random.Random
) -> None:
    # Arrivals with repeats and in any order; every seq up to the highest arrives at least once
    # (the resend after a gap), the client hands over 1..n exactly once each, in order.
    highest = max(seqs)
    arrivals = seqs + list(range(1, highest + 1))
    shuffle.shuffle(arrivals)
    order = FeedOrder({"agent:a": 0})
    handed = [e["seq"] for s in arrivals for e in order.accept(envelope(s), 0.0)]
    assert handed == list(range(1, highest + 1))


def test_a_gap_is_asked_for_again_after_a_short_wait() -> None:
    order = FeedOrder({"agent:a": 4})
    assert order.accept(envelope(5), 0.0) == [envelope(5)]
    assert order.accept(envelope(7), 1.0) == []
    assert order.gaps(1.0 + GAP_WAIT_SECONDS / 2) == {}
    assert order.gaps(1.0 + GAP_WAIT_SECONDS) == {"agent:a": 5}
    assert [e["seq"] for e in order.accept(envelope(6), 2.5)] == [6, 7]
    assert order.gaps(10.0) == {}


def test_a_target_without_api_gateway_v2_or_appconfig_can_leave_them_out() -> None:
    # LocalStack's community image has neither: `lighthouse deploy` passes WebSocketPush=false and
    # FlagsOnAppConfig=false there, and every resource that needs them must go with its condition.
    resources = load_template()["Resources"]
    for name, resource in resources.items():
        kind = resource["Type"]
        if kind.startswith("AWS::ApiGatewayV2::") or name in (
            "WebSocketFunction",
            "NotifierFunction",
            "ConnectionsTable",
        ):
            assert resource.get("Condition") == "CreateWebSocketApi", name
        if kind.startswith("AWS::AppConfig::"):
            assert resource.get("Condition") == "CreateAppConfigFlags", name
