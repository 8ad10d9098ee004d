"""Real-time delivery benchmark (issue #18). Run with `make bench` (or `python -m tests.perf.bench_push`).

On the embedded cloud (in this process, function code in-process so its containers can be counted):
1. Push latency: from the start of an elicitation's create (POST /elicitation/create) to its arrival
   on the target's WebSocket, with 1 and with 200 agents connected (the targets picked at random).
2. Long-poll latency in the same run: from the same create to the answer of the target's waiting
   GET /elicitation/pending?wait=20, with 1 and with 200 agents waiting.
3. While 200 agents wait: open HTTP requests and function instances (containers running an
   invocation) each way.
Figures are compared to a conditional PutItem over HTTP measured in the same run. Goal: push p99
<= 100 ms at 200 agents. BENCH_QUICK=1 takes fewer samples.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
import time
from typing import Any

import requests
from websockets.asyncio.client import connect

from lighthouse_tools.localcloud.cloud import REGION, LocalCloud, LocalCloudOptions
from tests.helpers import signed_session_body
from tests.perf.stats import floor, summarize, write

QUICK = os.environ.get("BENCH_QUICK") == "1"
AGENTS = 200
SAMPLES = {1: 20, AGENTS: 40} if QUICK else {1: 100, AGENTS: 200}
SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
LIMITS = {
    "LIGHTHOUSE_ELICITATION_CREATES_PER_MINUTE": "1000000",
    "LIGHTHOUSE_ELICITATION_BURST": "100000",
    "LIGHTHOUSE_SESSIONS_PER_MINUTE": "1000000",
    "LIGHTHOUSE_REQUESTS_PER_MINUTE": "100000000",
    "LIGHTHOUSE_REQUEST_BURST": "100000",
    "LIGHTHOUSE_MAX_OPEN_WAITS": "1000",
}


class Agents:
    def __init__(self, cloud: LocalCloud, count: int) -> None:
        parts = cloud.components()
        self.api = cloud.api_url
        self.tokens: dict[str, str] = {}
        self.http = requests.Session()
        self.http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=256))
        for index in range(count):
            agent_id = f"push-bench-{index}"
            secret = parts.agents.register(agent_id, "agent").secret
            session = self.http.post(f"{self.api}/sessions", json=signed_session_body(agent_id, secret), timeout=30)
            self.tokens[agent_id] = session.json()["token"]
        asker = "push-bench-asker"
        secret = parts.agents.register(asker, "agent").secret
        session = self.http.post(f"{self.api}/sessions", json=signed_session_body(asker, secret), timeout=30)
        self.asker_token = session.json()["token"]

    def create(self, target: str) -> str:
        response = self.http.post(
            f"{self.api}/elicitation/create",
            json={"to_agent": target, "message": "ok?", "schema": SCHEMA, "timeout_seconds": 3600},
            headers={"Authorization": f"Bearer {self.asker_token}"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["elicitation_id"])


class Sockets:
    """`agents` connected over WebSocket in one asyncio thread; arrivals timed as they come."""

    def __init__(self, url: str, tokens: dict[str, str]) -> None:
        self.url = url
        self.tokens = tokens
        self.arrived: dict[str, float] = {}
        self.changed = threading.Condition()
        self.ready = threading.Event()
        self.stop: asyncio.Event | None = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),), daemon=True)
        self.thread.start()
        if not self.ready.wait(120):
            raise RuntimeError("the agents did not all connect")

    async def _main(self) -> None:
        self.stop = asyncio.Event()
        connections = [await connect(f"{self.url}?token={token}") for token in self.tokens.values()]
        for connection, agent in zip(connections, self.tokens, strict=True):
            await connection.send(json.dumps({"action": "subscribe", "feeds": {f"agent:{agent}": None}}))
            json.loads(await connection.recv())  # the acknowledgement
        readers = [asyncio.ensure_future(self._read(connection)) for connection in connections]
        self.ready.set()
        await self.stop.wait()
        for connection in connections:
            await connection.close()
        await asyncio.gather(*readers, return_exceptions=True)

    async def _read(self, connection: Any) -> None:
        async for raw in connection:
            arrived = time.perf_counter()
            envelope = json.loads(raw)
            if envelope.get("type") == "elicitation.requested":
                with self.changed:
                    self.arrived[envelope["id"]] = arrived
                    self.changed.notify_all()

    def wait_for(self, elicitation_id: str, timeout: float = 30) -> float:
        with self.changed:
            if not self.changed.wait_for(lambda: elicitation_id in self.arrived, timeout):
                raise TimeoutError(f"{elicitation_id} was never pushed")
            return self.arrived[elicitation_id]

    def close(self) -> None:
        assert self.stop is not None
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)


def push_latency(agents: Agents, sockets: Sockets, targets: list[str], samples: int) -> dict[str, Any]:
    total, create, after = [], [], []
    for _ in range(samples):
        began = time.perf_counter()
        elicitation_id = agents.create(random.choice(targets))
        created = time.perf_counter()
        arrived = sockets.wait_for(elicitation_id)
        total.append((arrived - began) * 1000)
        create.append((created - began) * 1000)
        after.append(max(0.0, arrived - created) * 1000)
    return {
        "create_to_arrival": summarize(total),
        "create_request": summarize(create),
        # The push's own share: from the create's response to the arrival (0 if it came first).
        "after_create_response": summarize(after),
    }


class LongPollers:
    """`targets` each holding GET /elicitation/pending?wait=20 open, in a thread each (as agents do)."""

    def __init__(self, agents: Agents, targets: list[str]) -> None:
        self.agents = agents
        self.answered: dict[str, float] = {}
        self.changed = threading.Condition()
        self.waiting = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._poll, args=(t,), daemon=True) for t in targets]
        for thread in self.threads:
            thread.start()

    def _poll(self, target: str) -> None:
        headers = {"Authorization": f"Bearer {self.agents.tokens[target]}"}
        cursor = ""
        while not self.stop.is_set():
            with self.changed:
                self.waiting += 1
            try:
                # limit=200: the push phase left its questions pending; one page holds them all.
                query = f"wait=20&limit=200&after={cursor}" if cursor else "wait=20&limit=200"
                page = self.agents.http.get(
                    f"{self.agents.api}/elicitation/pending?{query}", headers=headers, timeout=40
                )
            finally:
                with self.changed:
                    self.waiting -= 1
            arrived = time.perf_counter()
            body = page.json()
            cursor = body.get("cursor", cursor)
            with self.changed:
                for item in body.get("elicitations", []):
                    self.answered.setdefault(item["elicitation_id"], arrived)
                self.changed.notify_all()

    def wait_for(self, elicitation_id: str, timeout: float = 30) -> float:
        with self.changed:
            if not self.changed.wait_for(lambda: elicitation_id in self.answered, timeout):
                raise TimeoutError(f"{elicitation_id} was never delivered by the long-poll")
            return self.answered[elicitation_id]

    def all_waiting(self, count: int, timeout: float = 60) -> None:
        with self.changed:
            self.changed.wait_for(lambda: self.waiting >= count, timeout)


def long_poll_latency(agents: Agents, pollers: LongPollers, targets: list[str], samples: int) -> dict[str, Any]:
    total = []
    for _ in range(samples):
        pollers.all_waiting(len(targets))
        began = time.perf_counter()
        elicitation_id = agents.create(random.choice(targets))
        total.append((pollers.wait_for(elicitation_id) - began) * 1000)
    return {"create_to_arrival": summarize(total)}


def main() -> None:
    os.environ.update(LIMITS)
    options = LocalCloudOptions(aws_port=0, api_port=0, mqtt=False, start_schedules=False, max_concurrency=1000)
    with LocalCloud(options) as cloud:
        cloud.reconfigure(dict(LIMITS))
        assert cloud.websocket_url is not None
        assert cloud.runtime is not None
        table = cloud.function_environment()["LIGHTHOUSE_EVENTS_TABLE"]
        floor_figures = floor(cloud.aws_endpoint_url, REGION, table)
        agents = Agents(cloud, AGENTS)
        names = list(agents.tokens)
        api = cloud.stack.api_function().logical_id if cloud.stack else "ApiFunction"
        results: dict[str, Any] = {"floor_put_item": floor_figures, "push": {}, "long_poll": {}, "waiting": {}}
        for count in (1, AGENTS):
            targets = names[:count]
            sockets = Sockets(cloud.websocket_url, {name: agents.tokens[name] for name in targets})
            push_latency(agents, sockets, targets, 3)  # warm: the notifier's and gateway's first calls
            results["push"][str(count)] = push_latency(agents, sockets, targets, SAMPLES[count])
            if count == AGENTS:
                time.sleep(1.0)  # the last create's invocations finish: what stays is the waiting itself
                results["waiting"]["websocket"] = {
                    "open_connections": cloud.websocket.connections if cloud.websocket else 0,
                    "open_http_requests": 0,
                    "function_instances_busy": cloud.runtime.busy(api) + cloud.runtime.busy("WebSocketFunction"),
                }
            sockets.close()
            pollers = LongPollers(agents, targets)
            pollers.all_waiting(count)
            long_poll_latency(agents, pollers, targets, 3)
            results["long_poll"][str(count)] = long_poll_latency(agents, pollers, targets, max(10, SAMPLES[count] // 4))
            if count == AGENTS:
                pollers.all_waiting(count)
                results["waiting"]["long_poll"] = {
                    "open_connections": 0,
                    "open_http_requests": pollers.waiting,
                    "function_instances_busy": cloud.runtime.busy(api),
                }
            pollers.stop.set()
        p99 = results["push"][str(AGENTS)]["create_to_arrival"]["p99_ms"]
        results["goal"] = {"push_p99_at_200_ms": p99, "met": p99 <= 100,
                           "ratio_to_floor_p50": round(p99 / floor_figures["p50_ms"], 1)}  # fmt: skip
    path = write("push", results)
    print(json.dumps(results, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
