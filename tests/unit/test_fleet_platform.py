"""The platform side of the fleet without a broker: topic ACLs, the accounts granted to mosquitto and
the IoT policy, the decisions on reports and results, and the local topic rules' SQL."""

from __future__ import annotations

from typing import Any

import pytest

from lighthouse.errors import Conflict
from lighthouse.events.model import StoredEvent
from lighthouse.fleet import contract, logic
from lighthouse.fleet.broker import ADMIN_ROLE, grant_commands
from lighthouse.fleet.iot_policy import policy_for
from lighthouse.fleet.models import Answer, CommandState, FleetAgentState, Issue, Observe
from lighthouse_tools.localcloud.mqtt import BrokerError, TopicRule

# ---- topics and who may use them -------------------------------------------------------------


def test_an_agent_may_publish_only_its_own_snapshots_and_results() -> None:
    for suffix in (*contract.SNAPSHOTS, *contract.RESULT_TOPICS.values()):
        assert contract.agent_may_publish("a1", f"lighthouse/agents/a1/{suffix}")
        assert not contract.agent_may_publish("a1", f"lighthouse/agents/a2/{suffix}")
    for forged in ("lighthouse/agents/a1/core/cmd/refresh", "lighthouse/agents/a1/core/cfg/set", "lighthouse/x"):
        assert not contract.agent_may_publish("a1", forged)


def test_an_agent_may_subscribe_only_to_its_own_commands_literally() -> None:
    for suffix in contract.COMMAND_TOPICS.values():
        assert contract.agent_may_subscribe("a1", f"lighthouse/agents/a1/{suffix}")
        assert not contract.agent_may_subscribe("a1", f"lighthouse/agents/a2/{suffix}")
    for wide in ("lighthouse/agents/#", "lighthouse/agents/+/core/cmd/refresh", "lighthouse/agents/a1/#", "#"):
        assert not contract.agent_may_subscribe("a1", wide)


@pytest.mark.parametrize(
    ("topic", "parsed"),
    [
        ("lighthouse/agents/a1/status", ("a1", "snapshot")),
        ("lighthouse/agents/node-7.eu:1/core/components", ("node-7.eu:1", "snapshot")),
        ("lighthouse/agents/a1/core/evt/refresh_result", ("a1", "result")),
        ("lighthouse/agents/a1/core/cmd/refresh", ("a1", "command")),
        ("lighthouse/agents/a1/core/other", ("a1", "unknown")),
    ],
)
def test_topics_parse_into_agent_and_kind(topic: str, parsed: tuple[str, str]) -> None:
    found = contract.parse_topic(topic)
    assert found is not None
    assert (found.agent_id, found.kind) == parsed


@pytest.mark.parametrize("topic", ["lighthouse/agents//status", "lighthouse/agents/+/status", "other/a1/status", ""])
def test_topics_outside_the_contract_do_not_parse(topic: str) -> None:
    assert contract.parse_topic(topic) is None


def test_the_mosquitto_account_of_an_agent_carries_exactly_its_acl() -> None:
    commands = grant_commands("a1", "pw", contract.agent_acl("a1"))
    names = [c["command"] for c in commands]
    # the client before its role: deleting a role a client still holds crashes mosquitto 2.0.11
    assert names[:3] == ["deleteClient", "deleteRole", "createRole"]
    assert names[-1] == "createClient"
    acls = {(c["acltype"], c["topic"]) for c in commands if c["command"] == "addRoleACL"}
    acl = contract.agent_acl("a1")
    assert acls == {("publishClientSend", t) for t in acl.publish} | {("subscribeLiteral", t) for t in acl.subscribe}
    client = commands[-1]
    assert client["clientid"] == "a1"  # nobody else can take over its session
    assert client["roles"] == [{"rolename": "agent:a1", "priority": 1}]
    admin = grant_commands("ops", "pw", None)
    assert admin[-1]["roles"] == [{"rolename": ADMIN_ROLE, "priority": 1}]
    assert not any(c["command"] == "createRole" for c in admin)


def test_the_iot_policy_scopes_an_agent_to_its_own_topics() -> None:
    policy = policy_for("a1", False, "eu-west-1", "123456789012")
    statements = {s["Action"]: s["Resource"] for s in policy["Statement"]}
    assert statements["iot:Connect"] == "arn:aws:iot:eu-west-1:123456789012:client/a1"
    assert all("/lighthouse/agents/a1/" in r for r in statements["iot:Publish"])
    assert all("core/cmd" in r or "core/cfg/set" in r for r in statements["iot:Subscribe"])
    admin = {s["Action"]: s["Resource"] for s in policy_for("ops", True, "eu-west-1", "1")["Statement"]}
    assert admin["iot:Subscribe"] == ["arn:aws:iot:eu-west-1:1:topicfilter/lighthouse/agents/*"]


# ---- decisions -------------------------------------------------------------------------------


def _fold(stream: str, events: list[Any], fold: Any) -> Any:
    state = fold.initial()
    for version, event in enumerate(events, 1):
        state = fold.evolve(state, StoredEvent(stream, version, event, f"e{version}", 0.0))
    return state


def test_a_snapshot_is_recorded_once_until_it_changes() -> None:
    metadata = {"schema": contract.SCHEMA, "agent_id": "a1", "core_version": "1"}
    first = logic.observe(FleetAgentState(), Observe("a1", contract.METADATA, metadata, 10.0))
    assert len(first) == 1
    state = _fold("fleet#a1", first, logic.FLEET_FOLD)
    assert logic.observe(state, Observe("a1", contract.METADATA, metadata, 20.0)) == []
    assert len(logic.observe(state, Observe("a1", contract.METADATA, {**metadata, "core_version": "2"}, 30.0))) == 1


def test_status_records_presence_changes_and_not_every_heartbeat() -> None:
    online = {"schema": contract.SCHEMA, "state": "online", "ts": 10.0, "heartbeat_s": 30}
    events = logic.observe(FleetAgentState(), Observe("a1", contract.STATUS, online, 10.0))
    assert [e.TYPE for e in events] == ["FLEET_PRESENCE_CHANGED", "FLEET_SNAPSHOT_RECORDED"]
    state = _fold("fleet#a1", events, logic.FLEET_FOLD)
    assert state.presence == "online"
    # a heartbeat 30 s later: nothing new; one with a new interval, or ten intervals later: recorded
    assert logic.observe(state, Observe("a1", contract.STATUS, {**online, "ts": 40.0}, 40.0)) == []
    assert len(logic.observe(state, Observe("a1", contract.STATUS, {**online, "heartbeat_s": 5}, 41.0))) == 1
    assert len(logic.observe(state, Observe("a1", contract.STATUS, {**online, "ts": 320.0}, 320.0))) == 1
    will = {"schema": contract.SCHEMA, "state": "offline", "reason": "connection lost"}
    gone = logic.observe(state, Observe("a1", contract.STATUS, will, 50.0))
    assert gone[0].TYPE == "FLEET_PRESENCE_CHANGED"
    assert gone[0].state == "offline"


def _issued(request_id: str = "cmd-1", agent: str = "a1", kind: str = "refresh") -> CommandState:
    issue = Issue(request_id, agent, kind, {"request_id": request_id}, "ops", 0.0, 600.0, None)
    return _fold(f"fleetcmd#{request_id}", logic.issue(CommandState(), issue), logic.COMMAND_FOLD)


def test_a_result_from_another_agent_or_for_another_command_is_a_violation() -> None:
    state = _issued()
    assert (
        logic.mismatch(CommandState(), Answer("a1", "refresh", {}, 1.0)) == "no command with this request id was sent"
    )
    assert "sent to 'a1'" in (logic.mismatch(state, Answer("a2", "refresh", {}, 1.0)) or "")
    assert "was a refresh" in (logic.mismatch(state, Answer("a1", "install", {}, 1.0)) or "")
    assert logic.mismatch(state, Answer("a1", "refresh", {}, 1.0)) is None


def test_the_first_result_decides_and_expiry_leaves_a_finished_command_alone() -> None:
    state = _issued()
    with pytest.raises(Conflict):
        logic.issue(state, Issue("cmd-1", "a1", "refresh", {}, "ops", 0.0, 600.0, None))
    done = _fold("fleetcmd#cmd-1", [
        *logic.issue(CommandState(), Issue("cmd-1", "a1", "refresh", {}, "ops", 0.0, 600.0, None)),
        *logic.deliver(state, 1.0),
        *logic.complete(state, Answer("a1", "refresh", {"ok": False, "error": "x"}, 2.0)),
    ], logic.COMMAND_FOLD)  # fmt: skip
    assert done.status == "failed"
    assert done.result == {"ok": False, "error": "x"}
    assert logic.complete(done, Answer("a1", "refresh", {"ok": True}, 3.0)) == []
    assert logic.expire(done, 700.0) == []
    assert logic.expire(state, 700.0)[0].reason.startswith("the agent did not come online")
    assert logic.expire(CommandState(), 700.0) == []  # no such command: nothing to record


# ---- the local topic rules' SQL ------------------------------------------------------------------

SQS = [{"Sqs": {"QueueUrl": "http://q", "RoleArn": "r", "UseBase64": False}}]


def test_a_rule_selects_the_payload_and_the_computed_fields() -> None:
    rule = TopicRule.parse(
        "R",
        {
            "Sql": "SELECT *, topic() AS topic, timestamp() AS received_at FROM 'lighthouse/agents/+/status'",
            "Actions": SQS,
        },
    )
    assert rule.topic_filter == "lighthouse/agents/+/status"
    assert rule.queue_url == "http://q"
    assert rule.select("lighthouse/agents/a1/status", {"state": "online"}, 123) == {
        "state": "online", "topic": "lighthouse/agents/a1/status", "received_at": 123,
    }  # fmt: skip


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT state FROM 'x'",
        "SELECT * FROM 'x' WHERE state = 'online'",
        "SELECT *, clientid() AS c FROM 'x'",
        "DELETE",
    ],
)
def test_sql_the_runner_cannot_evaluate_is_refused_at_start(sql: str) -> None:
    with pytest.raises(BrokerError):
        TopicRule.parse("R", {"Sql": sql, "Actions": SQS})


def test_the_command_schemas_in_schemas_fleet_are_the_ones_the_platform_validates_with() -> None:
    from lighthouse_tools.fleet_cli import FLEET_SCHEMAS, render_schemas

    rendered = render_schemas()
    assert set(rendered) == {f"{kind}.json" for kind in contract.COMMAND_TYPES}
    for name, content in rendered.items():
        assert (FLEET_SCHEMAS / name).read_text() == content, f"run `lighthouse fleet schemas` ({name} is stale)"


def test_lighthouse_agent_core_gets_its_arguments_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    from lighthouse_tools import cli
    from lighthouse_tools.agent_core import main as agent_core

    received: list[list[str]] = []
    monkeypatch.setattr(agent_core, "main", lambda argv: received.append(argv) or 0)
    assert cli.main(["agent-core", "--agent-id", "a1", "--state-dir", "/tmp/a1"]) == 0
    assert cli.main(["--state-file", "x.json", "agent-core", "--agent-id", "a1", "--state-dir", "d"]) == 0
    assert received == [
        ["--agent-id", "a1", "--state-dir", "/tmp/a1"],
        ["--state-file", "x.json", "--agent-id", "a1", "--state-dir", "d"],
    ]
