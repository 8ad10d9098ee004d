"""Hardening benchmark: /health latency while many long-polls are open, and what the hardening
costs per request. Run with `make bench` (or `python -m tests.perf.bench_hardening`).

1. /health p50/p99 with no long-poll open, then with N agents each holding one `?wait=20` long-poll
   (goal: p99 <= 50 ms with 200 open), on the embedded cloud over HTTP.
2. The strict JSON reader against `json.loads` on the same bodies (small and 256 KiB).
3. An authenticated GET (now charged to the agent's request budget) next to the conditional-PutItem
   floor measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from typing import Any

import requests

from lighthouse import strictjson
from lighthouse.events import StoredEvent
from lighthouse.events.types import Probe
from lighthouse_tools.localcloud.cloud import LocalCloud, LocalCloudOptions
from tests.helpers import signed_session_body
from tests.perf.stats import summarize, write

HEALTH_SAMPLES = 200


def health_samples(api_url: str, count: int) -> list[float]:
    session = requests.Session()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        response = session.get(f"{api_url}/health", timeout=30)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
        time.sleep(0.01)
    return samples


def open_long_polls(api_url: str, tokens: list[str], stop: threading.Event) -> tuple[list[threading.Thread], list[int]]:
    """One thread per agent, each re-opening its long-poll until `stop`; returns the statuses seen."""
    statuses: list[int] = []

    def hold(token: str) -> None:
        session = requests.Session()
        while not stop.is_set():
            response = session.get(
                f"{api_url}/elicitation/pending?wait=20", headers={"Authorization": f"Bearer {token}"}, timeout=60
            )
            statuses.append(response.status_code)
            if response.status_code == 429:  # as a client should: wait as long as it is told
                stop.wait(float(response.headers.get("Retry-After", "1")))

    threads = [threading.Thread(target=hold, args=(token,), daemon=True) for token in tokens]
    for thread in threads:
        thread.start()
    return threads, statuses


def floor_ms(cloud: LocalCloud, count: int = 200) -> list[float]:
    dynamodb = cloud.client("dynamodb")
    table = next(name for name in dynamodb.list_tables()["TableNames"] if name.endswith("EventsTable"))
    samples = []
    for _ in range(count):
        item = StoredEvent(f"floor-{uuid.uuid4().hex}", 1, Probe(n=1), uuid.uuid4().hex, time.time())
        started = time.perf_counter()
        dynamodb.put_item(TableName=table, Item=item.to_item(), ConditionExpression="attribute_not_exists(version)")
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def parser_figures() -> dict[str, Any]:
    small = json.dumps({"tool_name": "Bash", "tool_input": {"command": "ls -la"}, "context": {"cwd": "/w"}}).encode()
    items = 256 * 1024 // 26  # each {"k": "v1234", "n": 1234} item is about 26 bytes
    large = json.dumps({"items": [{"k": f"v{i}", "n": i} for i in range(items)]}).encode()
    figures = {}
    for name, body in (("small", small), ("256KiB", large)):
        rounds = 2000 if name == "small" else 40
        plain, strict = [], []
        for _ in range(rounds):
            started = time.perf_counter()
            json.loads(body)
            middle = time.perf_counter()
            strictjson.loads(body, max_bytes=1 << 20)
            strict.append((time.perf_counter() - middle) * 1000)
            plain.append((middle - started) * 1000)
        figures[name] = {
            "bytes": len(body),
            "json_loads": summarize(plain),
            "strictjson": summarize(strict),
            "ratio_p50": round(summarize(strict)["p50_ms"] / max(summarize(plain)["p50_ms"], 1e-6), 2),
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--polls", type=int, default=200, help="agents each holding one long-poll")
    args = parser.parse_args()
    figures: dict[str, Any] = {"parser": parser_figures()}
    with LocalCloud(LocalCloudOptions(api_port=0, aws_port=0, start_schedules=False)) as cloud:
        tokens = []
        parts = cloud.components()
        for index in range(args.polls + 1):
            agent_id = f"poller-{index}"
            secret = parts.agents.register(agent_id, "agent").secret
            response = requests.post(
                f"{cloud.api_url}/sessions", json=signed_session_body(agent_id, secret), timeout=30
            )
            tokens.append(response.json()["token"])
        reader = tokens.pop()
        figures["floor_put_item"] = summarize(floor_ms(cloud))
        gets = []
        for _ in range(200):
            started = time.perf_counter()
            requests.get(f"{cloud.api_url}/agents?limit=5", headers={"Authorization": f"Bearer {reader}"}, timeout=30)
            gets.append((time.perf_counter() - started) * 1000)
        figures["authenticated_get"] = summarize(gets)
        reader_headers = {"Authorization": f"Bearer {reader}"}
        figures["health_idle"] = summarize(health_samples(cloud.api_url, HEALTH_SAMPLES))
        stop = threading.Event()
        threads, statuses = open_long_polls(cloud.api_url, tokens, stop)
        time.sleep(5.0)  # let every poll open and settle
        figures["health_with_polls"] = summarize(health_samples(cloud.api_url, HEALTH_SAMPLES))
        busy_gets = []
        for _ in range(200):
            started = time.perf_counter()
            requests.get(f"{cloud.api_url}/agents?limit=5", headers=reader_headers, timeout=30)
            busy_gets.append((time.perf_counter() - started) * 1000)
        figures["authenticated_get_with_polls"] = summarize(busy_gets)
        figures["long_polls"] = args.polls
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        figures["poll_statuses"] = {str(code): statuses.count(code) for code in sorted(set(statuses))}
    figures["goal"] = "health p99 <= 50 ms with 200 long-polls open"
    figures["goal_met"] = figures["health_with_polls"]["p99_ms"] <= 50.0
    figures["health_p99_with_polls_vs_idle"] = round(
        figures["health_with_polls"]["p99_ms"] / figures["health_idle"]["p99_ms"], 2
    )
    path = write("hardening", figures)
    print(json.dumps(figures, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
