"""Feature flags without a network: rollout shares, monotone rollouts, validation, the store's cache
and fallback, and the gate's deny classes switched per agent."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider

from lighthouse.auth.tokens import Principal
from lighthouse.clock import FixedClock
from lighthouse.errors import Conflict, NotFound, ValidationFailed
from lighthouse.events import EventStore
from lighthouse.events.recorders import InMemoryRecorder
from lighthouse.flags import logic
from lighthouse.flags.models import PutFlags
from lighthouse.flags.service import FlagsService
from lighthouse.flags.store import EventStoreFlags, FlagsLog, LastKnownGood
from lighthouse.validation.gate import DecisionGate
from lighthouse.validation.policy import PolicyEngine, default_policies

ADMIN = Principal("root", "admin", 0, 2**40, "t")
IDS = [f"agent-{n}" for n in range(10_000)]
ENGINE = PolicyEngine(default_policies())
TOLERANCE = 0.02  # the share at 25 % over 10,000 ids: binomial sd 0.43 %, so 2 % is > 4 sd


def service(clock: FixedClock | None = None, cache_seconds: float = 0) -> tuple[FlagsService, FlagsLog]:
    clock = clock or FixedClock()
    log = FlagsLog(EventStore(InMemoryRecorder(), clock))
    store = EventStoreFlags(log, cache_seconds, clock=clock.now)
    return FlagsService(log, store, clock, store_name="events", cache_seconds=cache_seconds), log


def enabled_set(flags: FlagsService, flag: str) -> set[str]:
    return {agent for agent in IDS if flags.enabled(flag, agent, "agent")}


def test_a_quarter_rollout_enables_a_quarter_of_10000_agents() -> None:
    flags, _ = service()
    flags.rollout(ADMIN, logic.WEBSOCKET_PUSH, 25)
    share = len(enabled_set(flags, logic.WEBSOCKET_PUSH)) / len(IDS)
    assert abs(share - 0.25) <= TOLERANCE, share


def test_raising_the_percentage_never_turns_an_enabled_agent_off() -> None:
    flags, _ = service()
    before: set[str] = set()
    for percent in (0, 1, 5, 10, 25, 50, 75, 99, 100):
        flags.rollout(ADMIN, logic.WEBSOCKET_PUSH, percent)
        now = enabled_set(flags, logic.WEBSOCKET_PUSH)
        assert before <= now, f"{len(before - now)} agents turned off at {percent} %"
        assert abs(len(now) / len(IDS) - percent / 100) <= TOLERANCE
        before = now
    assert before == set(IDS)


def test_each_flag_picks_its_own_agents() -> None:
    first = {a for a in IDS if logic.agent_hash("one", a) % 100 < 10}
    second = {a for a in IDS if logic.agent_hash("two", a) % 100 < 10}
    assert len(first & second) < len(first) / 2  # not the same 10 % for every rollout


def test_a_rollout_keeps_role_and_agent_targeting() -> None:
    flags, _ = service()
    rules = {
        "admins": {"when_match": True, "conditions": [{"action": "EQUALS", "key": "role", "value": "admin"}]},
        "named": {"when_match": True, "conditions": [{"action": "IN", "key": "agent_id", "value": ["agent-7"]}]},
    }
    flags.put(ADMIN, PutFlags(flags={"beta": {"default": False, "rules": rules}}))
    view = flags.rollout(ADMIN, "beta", 10)
    assert set(view.flags["beta"]["rules"]) == {"admins", "named", "rollout"}
    assert flags.enabled("beta", "anyone-at-all", "admin")
    assert flags.enabled("beta", "agent-7", "agent")
    assert view.version == 2
    assert view.changed_by == "root"


def test_an_undeclared_flag_reads_its_declared_default_and_unknown_ones_false() -> None:
    flags, _ = service()
    assert flags.enabled(logic.WEBSOCKET_PUSH, "a", "agent") is True
    assert flags.enabled("never_declared", "a", "agent") is False
    with pytest.raises(NotFound):
        flags.rollout(ADMIN, "never_declared", 50)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"Bad-Name": {"default": True}}, "$"),
        ({"f": {"default": "yes"}}, "$.f.default"),
        ({"f": {"default": True, "rules": {"r": {"conditions": [{"action": "SOUNDS_LIKE", "key": "role",
                                                                  "value": 1}]}}}},
         "$.f.rules.r.conditions[0].action"),
        ({"f": {"default": True, "rules": {"r": {"conditions": [{"action": "EQUALS", "key": "tenant", "value": 1}]}}}},
         "$.f.rules.r.conditions[0].key"),
        ({"f": {"default": True, "extra": 1}}, "$.f"),
    ],
)  # fmt: skip
def test_a_document_that_breaks_the_schema_is_refused_with_the_path(document: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        logic.validated(document)
    assert expected in [v["path"] for v in refused.value.details["violations"]]


def test_powertools_own_rules_are_checked_too() -> None:
    bad_range = {"action": "MODULO_RANGE", "key": "agent_hash", "value": {"BASE": 100, "START": 50, "END": 10}}
    with pytest.raises(ValidationFailed, match="MODULO_RANGE"):
        logic.validated({"f": {"default": False, "rules": {"r": {"conditions": [bad_range]}}}})


def test_a_change_at_a_stale_version_is_refused_and_nothing_is_recorded() -> None:
    flags, log = service()
    flags.put(ADMIN, PutFlags(flags={"a": {"default": True}}))
    with pytest.raises(Conflict):
        flags.put(ADMIN, PutFlags(flags={"a": {"default": False}}, expected_version=0))
    assert log.latest().version == 1
    assert log.latest().document == {"a": {"default": True}}


def test_every_change_records_who_changed_which_flags() -> None:
    flags, log = service()
    flags.put(ADMIN, PutFlags(flags={"a": {"default": True}, "b": {"default": False}}))
    flags.put(ADMIN, PutFlags(flags={"a": {"default": True}, "c": {"default": True}}))
    (event,) = [s.event for s in log._events.load(logic.FLAGS_STREAM, 2, 2)]
    assert event.model_dump()["changed"] == ["b", "c"]
    assert event.model_dump()["by"] == "root"


def test_a_function_sees_a_change_after_its_cache_time_and_not_before() -> None:
    clock = FixedClock()
    writer, log = service(clock)
    reader = FlagsService(log, EventStoreFlags(log, 5, clock=clock.now), clock, store_name="events", cache_seconds=5)
    assert reader.enabled("beta", "a", "agent") is False
    writer.put(ADMIN, PutFlags(flags={"beta": {"default": True}}))
    clock.advance(4.9)
    assert reader.enabled("beta", "a", "agent") is False
    clock.advance(0.2)
    assert reader.enabled("beta", "a", "agent") is True


class Unreachable(StoreProvider):
    def __init__(self, document: dict[str, Any]) -> None:
        self.document: dict[str, Any] | None = document

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        return self.get_configuration()

    def get_configuration(self) -> dict[str, Any]:
        if self.document is None:
            raise ConnectionError("flag store down")
        return self.document


def test_an_unreachable_store_gives_the_last_document_or_the_declared_defaults() -> None:
    inner = Unreachable({logic.WEBSOCKET_PUSH: {"default": False}})
    fallback = LastKnownGood(inner)
    assert fallback.get_configuration() == {logic.WEBSOCKET_PUSH: {"default": False}}
    inner.document = None
    assert fallback.get_configuration() == {logic.WEBSOCKET_PUSH: {"default": False}}
    assert fallback.failures == 1
    never = LastKnownGood(Unreachable({}))
    never._inner.document = None  # type: ignore[attr-defined]
    assert never.get_configuration() == {}


def test_a_deny_class_switched_off_for_an_agent_escalates_instead_of_blocking(tmp_path: Any) -> None:
    off_for = {("trial-agent", "deny:outside_roots")}
    gate = DecisionGate(
        lambda: ENGINE,
        allowed_roots=[str(tmp_path)],
        enforces=lambda agent, role, deny_class: (agent, deny_class) not in off_for,
    )
    write = {"file_path": "/etc/passwd", "content": "x"}
    assert gate.decide("other", "agent", "Write", write, str(tmp_path)).decision == "blocked"
    escalated = gate.decide("trial-agent", "agent", "Write", write, str(tmp_path))
    assert escalated.decision == "escalate"
    assert "deny_class_off:deny:outside_roots" in escalated.matched_rules
    destroy = {"command": "rm -rf /"}
    assert gate.decide("trial-agent", "agent", "Bash", destroy, str(tmp_path)).decision == "blocked"
