"""The fleet contract on the local broker: `lighthouse agent-core` processes connected to the
mosquitto the local cloud starts, commands through the HTTP API, what they publish seen over MQTT
and in the fleet's read models (issue #15)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import requests
from paho.mqtt.enums import CallbackAPIVersion

from lighthouse.agents.models import OPERATOR_ID
from lighthouse.composition import Components
from lighthouse.fleet import contract
from lighthouse_tools.localcloud.cloud import LocalCloud
from tests.fleet_helpers import AgentCore, Watcher, core_environment, make_wheel
from tests.integration.conftest import AgentClient, eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def operator(cloud: LocalCloud) -> AgentClient:
    return AgentClient(cloud.api_url, OPERATOR_ID, cloud.operator_credential()[1])


@pytest.fixture(scope="module")
def watcher(operator: AgentClient) -> Iterator[Watcher]:
    granted = operator.post("/fleet/mqtt-credentials", {}).json()
    watching = Watcher(granted["mqtt_url"], granted["username"], granted["password"])
    yield watching
    watching.close()


@pytest.fixture(scope="module")
def core_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return core_environment(tmp_path_factory.mktemp("core-env") / "venv")


@pytest.fixture
def start_core(
    cloud: LocalCloud, parts: Components, core_python: Path, tmp_path: Path, watcher: Watcher
) -> Iterator[Callable[..., AgentCore]]:
    started: list[AgentCore] = []

    def start(agent_id: str | None = None, secret: str | None = None) -> AgentCore:
        if agent_id is None:
            agent_id = f"core-{secrets.token_hex(4)}"
            secret = parts.agents.register(agent_id, "agent").secret
        assert secret is not None
        core = AgentCore(core_python, agent_id, secret, cloud.api_url, tmp_path / agent_id)
        core.secret = secret  # type: ignore[attr-defined]
        started.append(core)
        watcher.wait_for(contract.topic(agent_id, contract.STATUS), where=lambda p: p.get("state") == "online")
        return core

    yield start
    for core in started:
        core.stop()


def send(operator: AgentClient, agent_id: str, body: dict[str, Any], wait: int = 20) -> dict[str, Any]:
    accepted = operator.post(f"/fleet/agents/{agent_id}/commands", body)
    assert accepted.status_code == 202, accepted.text
    request_id = accepted.json()["request_id"]
    if not wait:
        return dict(accepted.json())
    view = operator.http.get(f"{operator.api_url}/fleet/commands/{request_id}?wait={wait}", timeout=30)
    assert view.status_code == 200, view.text
    return dict(view.json())


def detail(operator: AgentClient, agent_id: str) -> dict[str, Any]:
    response = operator.get(f"/fleet/agents/{agent_id}")
    return dict(response.json()) if response.status_code == 200 else {}


def upload(operator: AgentClient, wheel: Path) -> str:
    grant = operator.post("/fleet/components", {"filename": wheel.name})
    assert grant.status_code == 201, grant.text
    assert requests.put(grant.json()["upload_url"], data=wheel.read_bytes(), timeout=30).status_code == 200
    return str(grant.json()["source"])


# ---- the contract's scenarios ----------------------------------------------------------------


def test_boot_publishes_every_retained_snapshot(
    operator: AgentClient, start_core: Any, watcher: Watcher, new_agent: Any
) -> None:
    core = start_core()
    seen = {watcher.wait_for(contract.topic(core.agent_id, name))[0] for name in contract.SNAPSHOTS[1:]}
    assert len(seen) == len(contract.SNAPSHOTS) - 1
    fleet = eventually(
        lambda: (d := detail(operator, core.agent_id)) and len(d["snapshots"]) == len(contract.SNAPSHOTS) and d
    )
    assert fleet["snapshots"]["core/inventory"]["docker"] == "absent"  # no Docker Engine socket on this host
    assert fleet["presence"] == "online"
    assert fleet["core_version"]
    assert fleet["snapshots"]["core/metadata"]["agent_id"] == core.agent_id
    # retained: a client that subscribes later still gets them at once (another admin's account:
    # a new password for the operator's would end the module's watcher's session)
    granted = new_agent("admin").post("/fleet/mqtt-credentials", {}).json()
    late = Watcher(granted["mqtt_url"], granted["username"], granted["password"], contract.topic(core.agent_id, "#"))
    try:
        retained = {late.wait_for(contract.topic(core.agent_id, name), timeout=5)[2] for name in contract.SNAPSHOTS}
        assert retained == {True}
    finally:
        late.close()
    listing = operator.get("/fleet/agents?status=online").json()["agents"]
    assert core.agent_id in {a["agent_id"] for a in listing}


def test_install_repeat_uninstall_and_absent_uninstall(
    operator: AgentClient, start_core: Any, watcher: Watcher, tmp_path: Path
) -> None:
    core = start_core()
    wheel, digest = make_wheel(tmp_path / "dist", "lh_test.demo_comp", "1.0.0", "lh_test_demo_comp")
    source = upload(operator, wheel)
    install = {"type": "install", "component_id": "demo", "version": "1.0.0", "entrypoint": "lh_test_demo_comp:main"}
    # WHEN an install is sent
    first = send(operator, core.agent_id, {**install, "source": source, "sha256": digest})
    # THEN it succeeds, names the normalised dist, asks for a restart, and the snapshot lists it
    assert first["status"] == "succeeded", first
    assert first["result"]["dist_name"] == "lh-test-demo-comp"
    assert first["result"]["restart_required"] is True
    result = watcher.wait_for(contract.topic(core.agent_id, contract.RESULT_TOPICS["install"]))
    # the restart came after the result was published: the next online status arrives later
    back = watcher.wait_for(contract.topic(core.agent_id, contract.STATUS), where=lambda p: p.get("state") == "online")
    assert back[3] > result[3]
    eventually(lambda: detail(operator, core.agent_id).get("components") == ["demo@1.0.0"])
    state = eventually(
        lambda: (s := detail(operator, core.agent_id)["snapshots"]["core/state"])["started_at"] > first["sent_at"] and s
    )
    assert state["restart_pending"] is False  # a fresh process
    # WHEN the same component and version are installed again: nothing to do
    again = send(operator, core.agent_id, {**install, "source": source, "sha256": digest})
    assert again["result"]["ok"] is True
    assert again["result"]["noop"] is True
    assert again["result"]["restart_required"] is False
    # WHEN a wheel whose sha256 differs is sent: refused, nothing changes
    forged = send(operator, core.agent_id, {**install, "version": "1.0.1", "source": source, "sha256": "0" * 64})
    assert forged["status"] == "failed"
    assert "sha256 mismatch" in forged["result"]["error"]
    # WHEN it is uninstalled, and uninstalled again
    removed = send(operator, core.agent_id, {"type": "uninstall", "component_id": "demo"})
    assert removed["status"] == "succeeded"
    assert removed["result"]["restart_required"] is True
    eventually(lambda: detail(operator, core.agent_id).get("component_count") == 0)
    watcher.wait_for(contract.topic(core.agent_id, contract.STATUS), where=lambda p: p.get("state") == "online")
    absent = send(operator, core.agent_id, {"type": "uninstall", "component_id": "demo"})
    assert absent["result"] == {**absent["result"], "ok": True, "noop": True, "restart_required": False}


def test_config_set_valid_and_invalid_and_the_heartbeat_follows_it(
    operator: AgentClient, start_core: Any, watcher: Watcher
) -> None:
    core = start_core()
    status_topic = contract.topic(core.agent_id, contract.STATUS)
    applied = send(operator, core.agent_id, {"type": "cfg_set", "set": {"heartbeat_s": 5, "log_level": "DEBUG"}})
    assert applied["status"] == "succeeded"
    assert applied["result"]["applied"] == {"heartbeat_s": 5, "log_level": "DEBUG"}
    # THEN heartbeats come every 5 s from now on (the default is 30)
    watcher.wait_for(status_topic, where=lambda p: p.get("heartbeat_s") == 5)
    beats = [watcher.wait_for(status_topic, timeout=10)[3] for _ in range(2)]
    assert 3.5 <= beats[1] - beats[0] <= 7.0, beats
    refused = send(operator, core.agent_id, {"type": "cfg_set", "set": {"heartbeat_s": 1, "colour": "blue"}})
    assert refused["status"] == "failed"
    assert {r.split(":")[0] for r in refused["result"]["reasons"]} == {"heartbeat_s", "colour"}

    # The snapshot is published after the command's result, and the two are ingested independently,
    # so an early read may still hold the snapshot from before cfg_set.
    def applied_snapshot() -> Any:
        cfg = detail(operator, core.agent_id)["snapshots"].get("core/cfg/state")
        return cfg if cfg and cfg["heartbeat_s"] == 5 else None

    cfg = eventually(applied_snapshot)
    assert cfg["log_level"] == "DEBUG"
    assert json.loads((core.state_dir / "config.json").read_text())["heartbeat_s"] == 5


def test_refresh_republishes_the_snapshots(operator: AgentClient, start_core: Any, watcher: Watcher) -> None:
    core = start_core()
    refreshed = send(operator, core.agent_id, {"type": "refresh"})
    assert refreshed["status"] == "succeeded"
    assert refreshed["result"]["snapshots_updated"] == list(contract.SNAPSHOTS)
    assert refreshed["completed_at"] - refreshed["sent_at"] < 5


def test_kill_9_fires_the_last_will_and_the_agent_reads_offline(
    operator: AgentClient, start_core: Any, watcher: Watcher
) -> None:
    core = start_core()
    eventually(lambda: detail(operator, core.agent_id).get("presence") == "online")
    core.kill()
    will = watcher.wait_for(contract.topic(core.agent_id, contract.STATUS), where=lambda p: p.get("state") == "offline")
    assert will[1]["reason"] == "connection lost"
    eventually(lambda: detail(operator, core.agent_id).get("presence") == "offline")
    eventually(lambda: operator.get(f"/agents/{core.agent_id}").json()["presence"] == "offline")


def test_a_command_waits_for_an_offline_agent_and_expires_after_its_ttl(
    operator: AgentClient, start_core: Any, watcher: Watcher
) -> None:
    core = start_core()
    core.stop()  # a clean stop: a retained offline status, the session kept by the broker
    watcher.wait_for(contract.topic(core.agent_id, contract.STATUS), where=lambda p: p.get("state") == "offline")
    queued = send(operator, core.agent_id, {"type": "refresh", "ttl_seconds": 120}, wait=0)
    doomed = send(operator, core.agent_id, {"type": "refresh", "ttl_seconds": 5}, wait=0)
    assert queued["status"] == "delivered"
    # the short one expires at its deadline (the state machine's Wait), before the agent is back
    expired = eventually(
        lambda: (v := operator.get(f"/fleet/commands/{doomed['request_id']}").json())["status"] == "expired" and v,
        timeout=30,
    )
    assert "did not answer" in json.dumps(expired) or expired["status"] == "expired"
    # WHEN the agent comes back, the broker hands it the command that waited
    start_core(core.agent_id, core.secret)
    done = operator.http.get(f"{operator.api_url}/fleet/commands/{queued['request_id']}?wait=20", timeout=30).json()
    assert done["status"] == "succeeded", done


# ---- who may do what on the broker ------------------------------------------------------------


def _connect(url: str, username: str, password: str, client_id: str | None = None) -> tuple[mqtt.Client, Any]:
    host, _, port = url.removeprefix("mqtt://").partition(":")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or username, protocol=mqtt.MQTTv311)
    client.username_pw_set(username, password)
    outcome: dict[str, Any] = {}
    client.on_connect = lambda c, u, f, reason, p: outcome.setdefault("connect", reason)
    client.on_subscribe = lambda c, u, mid, codes, p: outcome.setdefault("subscribe", [str(x) for x in codes])
    client.connect(host, int(port))
    client.loop_start()
    eventually(lambda: "connect" in outcome, timeout=5)
    return client, outcome


def test_an_agent_cannot_publish_or_subscribe_under_another_agents_prefix(
    operator: AgentClient, start_core: Any, watcher: Watcher, new_agent: Any
) -> None:
    victim = start_core()
    intruder = new_agent()
    granted = intruder.post("/fleet/mqtt-credentials", {}).json()
    assert granted["username"] == intruder.agent_id
    assert granted["client_id"] == intruder.agent_id
    client, outcome = _connect(granted["mqtt_url"], granted["username"], granted["password"])
    try:
        assert not outcome["connect"].is_failure
        forged = json.dumps({"schema": contract.SCHEMA, "state": "offline", "reason": "forged"})
        client.publish(contract.topic(victim.agent_id, contract.STATUS), forged, qos=1).wait_for_publish(5)
        client.subscribe(contract.topic(victim.agent_id, contract.COMMAND_TOPICS["refresh"]), qos=1)
        eventually(lambda: "subscribe" in outcome, timeout=5)
        assert outcome["subscribe"] != ["Granted QoS 1"]
        time.sleep(1)
        forged_seen = [
            m
            for m in watcher.drain()
            if m[0].startswith(contract.topic(victim.agent_id, "")) and "forged" in json.dumps(m[1])
        ]
        assert forged_seen == []
        assert detail(operator, victim.agent_id)["presence"] == "online"
    finally:
        client.disconnect()
        client.loop_stop()
    # a wrong password, or the right one under another client id, is refused at CONNECT
    wrong, refused = _connect(granted["mqtt_url"], granted["username"], "lh1.wrong.password")
    assert refused["connect"].is_failure
    wrong.loop_stop()
    other, refused = _connect(granted["mqtt_url"], granted["username"], granted["password"], client_id=victim.agent_id)
    assert refused["connect"].is_failure
    other.loop_stop()


def test_a_result_for_a_command_never_sent_is_a_security_violation(
    operator: AgentClient, new_agent: Any, watcher: Watcher
) -> None:
    agent = new_agent()
    response = agent.post("/fleet/mqtt-credentials", {})
    assert response.status_code == 200, response.text
    granted = response.json()
    client, _ = _connect(granted["mqtt_url"], granted["username"], granted["password"])
    try:
        bogus = {"schema": contract.SCHEMA, "request_id": "cmd-" + "f" * 24, "ok": True}
        topic = contract.topic(agent.agent_id, contract.RESULT_TOPICS["refresh"])
        client.publish(topic, json.dumps(bogus), qos=1).wait_for_publish(5)
        eventually(lambda: detail(operator, agent.agent_id).get("violations") == 1)
    finally:
        client.disconnect()
        client.loop_stop()


# ---- refusals through the API -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"type": "cfg_set"}, 422, "set"),
        ({"type": "refresh", "extra": 1}, 422, "extra"),
        (
            {
                "type": "install",
                "component_id": "x",
                "version": "1",
                "entrypoint": "m:f",
                "source": "https://evil.example/x-1-py3-none-any.whl",
                "sha256": "0" * 64,
            },
            422,
            "not allowed",
        ),
        (
            {
                "type": "install",
                "component_id": "x",
                "version": "1",
                "entrypoint": "m:f",
                "source": "artifact:components/x.whl",
                "sha256": "short",
            },
            422,
            "sha256",
        ),
        (
            {
                "type": "install",
                "component_id": "x",
                "version": "1",
                "entrypoint": "m:f",
                "source": "artifact:../secrets/x.whl",
                "sha256": "0" * 64,
            },
            422,
            "components/",
        ),
        ({"type": "reboot"}, 422, "type"),
        ({"type": "refresh", "ttl_seconds": 1}, 422, "ttl_seconds"),
    ],
)
def test_malformed_commands_are_refused_with_the_reason(
    operator: AgentClient, new_agent: Any, body: dict[str, Any], status: int, fragment: str
) -> None:
    agent = new_agent()
    response = operator.post(f"/fleet/agents/{agent.agent_id}/commands", body)
    assert response.status_code == status, response.text
    assert fragment in response.text


def test_commands_need_an_admin_and_a_known_agent(operator: AgentClient, new_agent: Any) -> None:
    agent = new_agent()
    assert agent.post(f"/fleet/agents/{agent.agent_id}/commands", {"type": "refresh"}).status_code == 403
    assert agent.get("/fleet/agents").status_code == 403
    assert operator.post("/fleet/agents/nobody-here/commands", {"type": "refresh"}).status_code == 404
    assert operator.get("/fleet/commands/cmd-" + "0" * 24).status_code == 404
    assert operator.get("/fleet/commands/not-a-command").status_code == 400


def test_messages_the_ingest_can_never_record_go_to_its_dead_letter_queue(cloud: LocalCloud, parts: Components) -> None:
    sqs = cloud.client("sqs")
    outputs = cloud.stack.outputs if cloud.stack else {}
    queue, dead = outputs["FleetIngestQueueUrl"], outputs["FleetIngestDeadLetterQueueUrl"]
    for body in (
        "not json",
        json.dumps({"topic": "lighthouse/agents/ghost-agent/status", "state": "online"}),
        json.dumps({"state": "online"}),
    ):
        sqs.send_message(QueueUrl=queue, MessageBody=body)

    def dead_letters() -> int:
        attributes = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"]) >= 3

    eventually(dead_letters, timeout=20)


# ---- rollouts -----------------------------------------------------------------------------------


def test_a_rollout_runs_a_canary_then_batches_and_halts_when_one_agent_fails(
    operator: AgentClient, start_core: Any, parts: Components, tmp_path: Path
) -> None:
    # GIVEN five cores tagged for this rollout; the third (in id order) has a component recorded
    # without a dist name, so a strict uninstall of it fails there and is a no-op everywhere else
    tag = f"wave-{secrets.token_hex(3)}"
    cores = []
    for index in range(5):
        agent_id = f"{tag}-{index}"
        secret = parts.agents.register(agent_id, "agent").secret
        if index == 2:
            (tmp_path / agent_id).mkdir(parents=True)
            legacy = {"legacy": {"component_id": "legacy", "version": "0.9", "entrypoint": "legacy:main"}}
            (tmp_path / agent_id / "components.json").write_text(json.dumps(legacy))
        cores.append(start_core(agent_id, secret))
        assert operator.put(f"/fleet/agents/{agent_id}/tags", {"tags": [tag]}).status_code == 200
    # WHEN a rollout of that uninstall runs in batches of two, allowing 10% failures
    body = {
        "command": {"type": "uninstall", "component_id": "legacy"},
        "selector": {"tags": [tag]},
        "batch_size": 2,
        "max_failure_percent": 10,
        "batch_timeout_seconds": 30,
    }
    started = operator.post("/fleet/rollouts", body)
    assert started.status_code == 202, started.text
    rollout_id = started.json()["rollout_id"]
    assert started.json()["agents"] == [c.agent_id for c in cores]
    # THEN the canary (one agent) and the first batch run; the failure halts it before the last batch
    finished = eventually(
        lambda: (v := operator.get(f"/fleet/rollouts/{rollout_id}").json())["status"] != "running" and v, timeout=60
    )
    assert finished["status"] == "halted", finished
    assert [b["agents"] for b in finished["batches"]] == [[cores[0].agent_id], [cores[1].agent_id, cores[2].agent_id]]
    assert finished["outcomes"] == {
        cores[0].agent_id: "succeeded",
        cores[1].agent_id: "succeeded",
        cores[2].agent_id: "failed",
    }
    assert finished["pending"] == 2
    assert "over the 10.0% allowed" in finished["reason"]
    failed = operator.get(f"/fleet/commands/{finished['batches'][1]['commands'][cores[2].agent_id]}").json()
    assert "no recorded dist_name" in failed["result"]["error"]
    assert failed["rollout_id"] == rollout_id


def test_a_rollout_with_nobody_selected_or_a_bad_command_is_refused(operator: AgentClient) -> None:
    nobody = operator.post("/fleet/rollouts", {"command": {"type": "refresh"}, "selector": {"tags": ["no-such-tag"]}})
    assert nobody.status_code == 422
    assert "names no agent" in nobody.text
    bad = operator.post("/fleet/rollouts", {"command": {"type": "cfg_set"}, "selector": {"tags": ["x"]}})
    assert bad.status_code == 422
    assert operator.get("/fleet/rollouts/ro-" + "0" * 24).status_code == 404


def test_the_broker_comes_back_after_a_crash_and_cores_reconnect(
    cloud: LocalCloud, operator: AgentClient, start_core: Any, watcher: Watcher
) -> None:
    core = start_core()
    broker = cloud.broker
    assert broker is not None
    # WHEN mosquitto dies
    broker.process.kill()
    # THEN the local cloud starts it again on the same port, the core reconnects with its account
    # (kept in the dynamic-security file), and commands reach it
    eventually(lambda: broker.restarts == 1 and broker.process.poll() is None, timeout=20)
    watcher.wait_for(
        contract.topic(core.agent_id, contract.STATUS), where=lambda p: p.get("state") == "online", timeout=30
    )
    refreshed = send(operator, core.agent_id, {"type": "refresh"})
    assert refreshed["status"] == "succeeded", refreshed


def test_the_iot_authorizer_accepts_only_the_live_password_of_its_own_account(
    parts: Components, new_agent: Any
) -> None:
    import base64
    import importlib.util

    agent = new_agent()
    issued = [agent.post("/fleet/mqtt-credentials", {}) for _ in range(2)]
    assert [r.status_code for r in issued] == [200, 200], [r.text for r in issued]
    first, second = (r.json() for r in issued)
    fleet = parts.fleet
    assert fleet.authorize(agent.agent_id, second["password"]) is not None
    assert fleet.authorize(agent.agent_id, first["password"]) is None  # replaced: revoked
    assert fleet.authorize("someone-else", second["password"]) is None
    assert fleet.authorize(agent.agent_id, "lh1.garbage.x") is None
    # the function IoT Core calls, with a CONNECT's fields as IoT Core sends them
    spec = importlib.util.spec_from_file_location("fleet_authorizer_app", "functions/fleet_authorizer/app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler = module.create_handler(lambda: fleet)

    def connect(username: str, password: str) -> dict[str, Any]:
        event = {"protocols": ["mqtt"], "protocolData": {"mqtt": {
            "username": username, "password": base64.b64encode(password.encode()).decode(), "clientId": agent.agent_id,
        }}}  # fmt: skip
        return dict(handler(event, None))

    allowed = connect(f"{agent.agent_id}?x-amz-customauthorizer-name=lighthouse-fleet", second["password"])
    assert allowed["isAuthenticated"] is True
    policy = json.loads(allowed["policyDocuments"][0])
    publish = next(s["Resource"] for s in policy["Statement"] if s["Action"] == "iot:Publish")
    assert all(f"/lighthouse/agents/{agent.agent_id}/" in resource for resource in publish)
    assert connect(agent.agent_id, first["password"]) == {"isAuthenticated": False}
    assert handler({"protocolData": {"mqtt": {"username": agent.agent_id, "password": "%%%"}}}, None) == {
        "isAuthenticated": False
    }
