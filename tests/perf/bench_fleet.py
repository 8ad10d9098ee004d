"""The fleet's figures on the embedded local cloud, in one run (issue #15).

    python -m tests.perf.bench_fleet [--round-trips N] [--agents 1000 2000]

Round trip: POST /fleet/agents/{id}/commands (refresh) -> a real `lighthouse agent-core` runs it and
publishes its result -> the topic rule -> SQS -> the ingest function records it -> GET
/fleet/commands/{id}?wait=20 returns it; p50/p99 next to the conditional PutItem floor over HTTP.

Scale: N simulated agents (paho clients in 4 processes, each its own connection and its own
credentials, 30 s heartbeats, answering refresh as the core does: five snapshots and a result):
the time from the first CONNECT until the platform has recorded every agent's five snapshots; then
a rollout of refresh to all of them in batches of 100 through the API: the time until it completes
and the FLEET_COMMAND_COMPLETED events counted in the command streams; the broker's and the
platform's resident memory. Writes tests/perf/results/fleet.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from lighthouse.agents.models import OPERATOR_ID
from lighthouse.auth.tokens import Principal
from lighthouse.fleet import contract
from lighthouse.fleet.models import FLEET_MODEL
from lighthouse_tools.localcloud.cloud import LocalCloud, LocalCloudOptions
from tests.fleet_helpers import AgentCore
from tests.helpers import signed_session_body
from tests.perf.stats import floor, summarize, write

PROCESSES = 4
ADMIN = Principal(agent_id=OPERATOR_ID, role="admin", issued_at=0, expires_at=0, token_id="bench")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def platform_pids(exclude: set[int]) -> list[int]:
    """This process and its children (the function workers), less the broker and the simulators."""
    me, pids = os.getpid(), [os.getpid()]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        if int(fields[1]) == me and pid not in exclude:
            pids.append(pid)
    return pids


# ---- simulated agents (in their own processes) ---------------------------------------------------


def simulate(mqtt_url: str, accounts: list[tuple[str, str]], go: Any, stop: Any) -> None:
    """Agents as lightweight paho clients: will, five retained snapshots, refresh answered."""
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    host, _, port = mqtt_url.removeprefix("mqtt://").partition(":")
    clients = []

    def make(agent_id: str, password: str) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=agent_id, protocol=mqtt.MQTTv311, clean_session=False
        )
        client.username_pw_set(agent_id, password)
        offline = json.dumps({"schema": contract.SCHEMA, "state": "offline", "reason": "connection lost"})
        client.will_set(contract.topic(agent_id, contract.STATUS), offline, qos=1, retain=True)
        last: dict[str, Any] = {"command": None}

        def snapshots() -> None:
            now = time.time()
            payloads = {
                contract.STATUS: {"state": "online", "ts": now, "heartbeat_s": 30},
                contract.METADATA: {
                    "agent_id": agent_id, "core_version": "bench", "platform": "sim", "python": "3.11", "host": "h",
                },
                contract.STATE: {"uptime_s": 0, "last_command": last["command"], "restart_pending": False},
                contract.COMPONENTS: {"count": 0, "components": []},
                contract.CFG_STATE: {"telemetry_enabled": True, "heartbeat_s": 30, "log_level": "INFO"},
            }  # fmt: skip
            for name, payload in payloads.items():
                client.publish(
                    contract.topic(agent_id, name), json.dumps({"schema": contract.SCHEMA, **payload}), 1, True
                )

        def on_connect(c: Any, u: Any, f: Any, reason: Any, p: Any) -> None:
            c.subscribe([(contract.topic(agent_id, t), 1) for t in contract.COMMAND_TOPICS.values()])
            snapshots()

        def on_message(c: Any, u: Any, message: Any) -> None:
            body = json.loads(message.payload)
            last["command"] = {"type": "refresh", "request_id": body["request_id"], "ok": True}
            snapshots()
            result = {"schema": contract.SCHEMA, "request_id": body["request_id"], "ok": True,
                      "snapshots_updated": list(contract.SNAPSHOTS)}  # fmt: skip
            c.publish(contract.topic(agent_id, contract.RESULT_TOPICS["refresh"]), json.dumps(result), 1)

        client.on_connect = on_connect
        client.on_message = on_message
        client.heartbeat = lambda: client.publish(  # type: ignore[attr-defined]
            contract.topic(agent_id, contract.STATUS),
            json.dumps({"schema": contract.SCHEMA, "state": "online", "ts": time.time(), "heartbeat_s": 30}),
            1,
            True,
        )
        return client

    go.wait()
    for agent_id, password in accounts:
        client = make(agent_id, password)
        client.connect_async(host, int(port), keepalive=60)
        client.loop_start()
        clients.append(client)

    def heartbeats() -> None:
        while not stop.wait(30 / max(1, len(clients))):
            for client in clients:
                if stop.is_set():
                    return
                client.heartbeat()  # type: ignore[attr-defined]
                time.sleep(30 / max(1, len(clients)))

    threading.Thread(target=heartbeats, daemon=True).start()
    stop.wait()
    for client in clients:
        client.disconnect()
        client.loop_stop()


# ---- the run -----------------------------------------------------------------------------------


def operator_session(cloud: LocalCloud) -> requests.Session:
    agent_id, secret = cloud.operator_credential()
    signed = requests.post(f"{cloud.api_url}/sessions", json=signed_session_body(agent_id, secret), timeout=30)
    signed.raise_for_status()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {signed.json()['token']}"
    return session


def round_trips(cloud: LocalCloud, operator: requests.Session, count: int, workdir: Path) -> dict[str, Any]:
    parts = cloud.components()
    agent_id = f"bench-core-{secrets.token_hex(3)}"
    secret = parts.agents.register(agent_id, "agent").secret
    core = AgentCore(Path(sys.executable), agent_id, secret, cloud.api_url, workdir / agent_id)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = operator.get(f"{cloud.api_url}/fleet/agents/{agent_id}", timeout=30)
            if got.status_code == 200 and got.json()["presence"] == "online":
                break
            time.sleep(0.2)
        samples = []
        for index in range(count + 5):
            began = time.perf_counter()
            sent = operator.post(
                f"{cloud.api_url}/fleet/agents/{agent_id}/commands", json={"type": "refresh"}, timeout=30
            )
            request_id = sent.json()["request_id"]
            view = operator.get(f"{cloud.api_url}/fleet/commands/{request_id}?wait=20", timeout=30).json()
            assert view["status"] == "succeeded", view
            if index >= 5:  # the first few warm the containers
                samples.append((time.perf_counter() - began) * 1000)
        return summarize(samples)
    finally:
        core.stop()


def recorded_agents(cloud: LocalCloud, prefix: str) -> int:
    """Agents whose five snapshots the fleet read model holds."""
    read_models = cloud.components().read_models
    count, token = 0, None
    while True:
        documents, token = read_models.list(FLEET_MODEL, limit=500, start_key=token)
        for document in documents:
            body = document.body or {}
            if body.get("agent_id", "").startswith(prefix) and len(body.get("snapshots", {})) == 5:
                count += 1
        if not token:
            return count


def accounts_for(cloud: LocalCloud, prefix: str, tag: str, agents: int) -> list[tuple[str, str]]:
    """Registered agents with MQTT credentials and the rollout's tag (in-process: set-up, not measured)."""
    parts = cloud.components()
    accounts = []
    for index in range(agents):
        agent_id = f"{prefix}{index:05d}"
        parts.agents.register(agent_id, "agent")
        principal = Principal(agent_id=agent_id, role="agent", issued_at=0, expires_at=0, token_id="bench")
        accounts.append((agent_id, parts.fleet.mqtt_credentials(principal).password))
        parts.fleet.set_tags(ADMIN, agent_id, [tag])
    return accounts


def until(check: Any, limit: float) -> float | None:
    """Seconds until `check()` is true (polled every 0.5 s), None past `limit`."""
    began = time.perf_counter()
    while time.perf_counter() - began < limit:
        if check():
            return time.perf_counter() - began
        time.sleep(0.5)
    return None


def completed_results(cloud: LocalCloud, view: dict[str, Any]) -> int:
    """FLEET_COMMAND_COMPLETED events in the rollout's command streams."""
    events = cloud.components().events
    return sum(
        1
        for batch in view.get("batches", [])
        for request_id in batch["commands"].values()
        if any(e.type == "FLEET_COMMAND_COMPLETED" for e in events.load(f"fleetcmd#{request_id}"))
    )


def scale(cloud: LocalCloud, operator: requests.Session, agents: int) -> dict[str, Any]:
    prefix = f"sim{agents}-{secrets.token_hex(2)}-"
    tag = prefix.rstrip("-")
    began = time.perf_counter()
    accounts = accounts_for(cloud, prefix, tag, agents)
    setup_s = time.perf_counter() - began
    go, stop = multiprocessing.Event(), multiprocessing.Event()
    workers = [
        multiprocessing.Process(target=simulate, args=(cloud.mqtt_url, accounts[i::PROCESSES], go, stop), daemon=True)
        for i in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    time.sleep(1)
    go.set()
    connected_s = until(lambda: recorded_agents(cloud, prefix) == agents, 420)
    body = {"command": {"type": "refresh"}, "selector": {"tags": [tag]}, "batch_size": 100,
            "max_failure_percent": 10, "batch_timeout_seconds": 120}  # fmt: skip
    started = time.perf_counter()
    rollout = operator.post(f"{cloud.api_url}/fleet/rollouts", json=body, timeout=120).json()
    views: list[dict[str, Any]] = [{}]

    def finished() -> bool:
        views[0] = operator.get(f"{cloud.api_url}/fleet/rollouts/{rollout['rollout_id']}", timeout=60).json()
        return bool(views[0]["status"] != "running")

    until(finished, 420)
    rollout_s = time.perf_counter() - started
    view = views[0]
    simulators = {w.pid or 0 for w in workers}
    figures = {
        "agents": agents,
        "account_setup_s": round(setup_s, 1),
        "connected_and_recorded_s": round(connected_s, 2) if connected_s is not None else None,
        "rollout_s": round(rollout_s, 2),
        "rollout_status": view.get("status"),
        "rollout_batches": len(view.get("batches", [])),
        "results_recorded_as_events": completed_results(cloud, view),
        "broker_rss_mb": rss_mb(cloud.broker.process.pid),
        # this process (the emulator, pollers, rule runner) and the function worker processes
        "platform_rss_mb": round(sum(rss_mb(p) for p in platform_pids({cloud.broker.process.pid, *simulators})), 1),
    }
    stop.set()
    for worker in workers:
        worker.join(30)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--round-trips", type=int, default=50)
    parser.add_argument("--agents", type=int, nargs="*", default=[1000, 2000])
    args = parser.parse_args()
    # The function code in this process: on two cores it recorded 200 agents' boot in 32 s where two
    # worker processes (each DynamoDB call a round trip to this process) fell behind and retried.
    options = LocalCloudOptions(aws_port=0, api_port=0, start_schedules=False, worker_processes=0)
    with LocalCloud(options) as cloud, tempfile.TemporaryDirectory() as workdir:
        operator = operator_session(cloud)
        table = cloud.function_environment()["LIGHTHOUSE_EVENTS_TABLE"]
        floor_put = floor(cloud.aws_endpoint_url, "us-east-1", table)
        trip = round_trips(cloud, operator, args.round_trips, Path(workdir))
        figures: dict[str, Any] = {
            "floor_conditional_put_http": floor_put,
            "command_round_trip": trip,
            "round_trip_p50_over_floor_p50": round(trip["p50_ms"] / floor_put["p50_ms"], 1),
            "scale": [scale(cloud, operator, count) for count in args.agents],
        }
    print(json.dumps(figures, indent=2))
    print(f"wrote {write('fleet', figures)}")


if __name__ == "__main__":
    main()
