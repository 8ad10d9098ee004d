"""Foundation benchmark: event append vs. the raw conditional PutItem floor, session creation and an
authenticated GET over HTTP, and `lighthouse up` time to ready. Run with `make bench`.

Machines here are shared and noisy, so each figure is compared with a floor measured in the same run.
"""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import requests

from lighthouse.auth.keys import sign_session_request
from lighthouse.events import EventStore, StoredEvent
from lighthouse.events.types import Probe
from lighthouse_tools.localcloud.cloud import REGION, LocalCloud, LocalCloudOptions
from tests.perf.stats import summarize, write

SAMPLES = 300
WARMUP = 30
THROUGHPUT_THREADS = 8
THROUGHPUT_SECONDS = 5.0


def timed(action: Any, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def floor_and_append(dynamodb: Any, store: EventStore, table: str) -> tuple[list[float], list[float]]:
    """Interleaved samples of (a) the floor: a bare conditional PutItem of an item exactly like the one an
    append writes (same table, so the same stream cost), prepared in advance; (b) EventStore.append."""
    prepared = [
        StoredEvent(f"floor-{uuid.uuid4().hex}", 1, Probe(n=1), uuid.uuid4().hex, time.time()).to_item()
        for _ in range(SAMPLES + WARMUP)
    ]
    floor: list[float] = []
    append: list[float] = []
    for index, item in enumerate(prepared):
        started = time.perf_counter()
        dynamodb.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(version)")
        middle = time.perf_counter()
        store.append(f"bench-{uuid.uuid4().hex}", [Probe(n=1)], expected_version=0)
        ended = time.perf_counter()
        if index >= WARMUP:
            floor.append((middle - started) * 1000)
            append.append((ended - middle) * 1000)
    return floor, append


def append_throughput(store: EventStore) -> float:
    count = [0] * THROUGHPUT_THREADS
    stop = time.perf_counter() + THROUGHPUT_SECONDS

    def worker(index: int) -> None:
        stream, version = f"tp-{uuid.uuid4().hex}", 0
        while time.perf_counter() < stop:
            store.append(stream, [Probe(n=version)], expected_version=version)
            version += 1
            count[index] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THROUGHPUT_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return round(sum(count) / THROUGHPUT_SECONDS, 1)


def http_figures(cloud: LocalCloud, floor_put: Any) -> dict[str, Any]:
    registration = cloud.components().agents.register("bench-agent", "agent")
    http = requests.Session()

    def session() -> str:
        timestamp, nonce = int(time.time()), secrets.token_hex(16)
        response = http.post(
            f"{cloud.api_url}/sessions",
            data=json.dumps(
                {
                    "agent_id": "bench-agent",
                    "timestamp": timestamp,
                    "nonce": nonce,
                    "signature": sign_session_request(registration.secret, "bench-agent", timestamp, nonce),
                }
            ),
        )
        assert response.status_code == 201, response.text
        return str(response.json()["token"])

    token = session()
    cloud.wait_for_projection()
    headers = {"Authorization": f"Bearer {token}"}

    def get() -> None:
        response = http.get(f"{cloud.api_url}/agents/bench-agent", headers=headers)
        assert response.status_code == 200, response.text

    timed(get, WARMUP)
    floor_samples, get_samples = [], []
    for _ in range(SAMPLES):  # interleaved with the floor, so drift on a shared machine hits both
        floor_samples += timed(floor_put, 1)
        get_samples += timed(get, 1)
    session_samples = timed(session, 100)
    return {
        "session_create": summarize(session_samples),
        "authenticated_get": summarize(get_samples),
        "floor_conditional_put_http": summarize(floor_samples),
    }


def up_time_to_ready(runs: int = 3) -> dict[str, Any]:
    lighthouse = str(Path(sys.executable).parent / "lighthouse")
    samples = []
    for run in range(runs):
        state = Path(f"/tmp/lighthouse-bench-{uuid.uuid4().hex}.json")
        data = state.with_suffix(".data")  # an empty data directory: the start-up of a new install
        started = time.perf_counter()
        process = subprocess.Popen(
            [
                lighthouse,
                "--state-file",
                str(state),
                "up",
                "--api-port",
                "0",
                "--aws-port",
                "0",
                "--mqtt-port",
                "0",
                "--data-dir",
                str(data),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("Press Ctrl+C"):
                samples.append(time.perf_counter() - started)
                break
        process.send_signal(signal.SIGINT)
        try:
            rest, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            rest, _ = process.communicate()
            raise RuntimeError(f"lighthouse up did not stop within 60 s after Ctrl+C: {rest}") from None
        assert process.returncode == 0, rest
        shutil.rmtree(data, ignore_errors=True)
        print(f"  lighthouse up run {run + 1}: {samples[-1]:.2f} s", flush=True)
    ordered = sorted(samples)
    return {"runs": runs, "median_s": round(ordered[len(ordered) // 2], 3), "max_s": round(ordered[-1], 3)}


def main() -> None:
    print("Foundation benchmark (embedded local cloud)", flush=True)
    # Many threads and many sessions: lift the per-agent session limit for the measurement only.
    options = LocalCloudOptions(aws_port=0, api_port=0, start_schedules=False)
    import os

    os.environ["LIGHTHOUSE_SESSIONS_PER_MINUTE"] = "100000"
    os.environ["LIGHTHOUSE_RATE_LIMIT_BURST"] = "100000"
    # One agent sends every GET here; the per-agent read limit (600/min) is not what is measured.
    os.environ["LIGHTHOUSE_REQUESTS_PER_MINUTE"] = "100000000"
    os.environ["LIGHTHOUSE_REQUEST_BURST"] = "100000"
    with LocalCloud(options) as cloud:
        env = cloud.function_environment()
        table = env["LIGHTHOUSE_EVENTS_TABLE"]
        over_http = boto3.client("dynamodb", endpoint_url=cloud.aws_endpoint_url, region_name=REGION)
        in_process = cloud.client("dynamodb")
        figures: dict[str, Any] = {}
        for label, dynamodb in (("http", over_http), ("in_process", in_process)):
            store = EventStore.dynamodb(dynamodb, table, env["LIGHTHOUSE_SNAPSHOTS_TABLE"])
            floor_samples, append_samples = floor_and_append(dynamodb, store, table)
            floor, append = summarize(floor_samples), summarize(append_samples)
            figures[f"append_{label}"] = {
                "floor_conditional_put": floor,
                "append": append,
                "p50_ratio": round(append["p50_ms"] / floor["p50_ms"], 3),
                "p99_ratio": round(append["p99_ms"] / floor["p99_ms"], 3),
                "throughput_appends_per_s": append_throughput(store),
                "goal": "append <= 1.3x floor",
            }

        def floor_put() -> None:
            item = StoredEvent(f"floor-{uuid.uuid4().hex}", 1, Probe(n=1), "e", time.time()).to_item()
            over_http.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(version)")

        api = http_figures(cloud, floor_put)
        http_floor = api["floor_conditional_put_http"]
        api["get_p50_ratio"] = round(api["authenticated_get"]["p50_ms"] / http_floor["p50_ms"], 3)
        api["get_p99_ratio"] = round(api["authenticated_get"]["p99_ms"] / http_floor["p99_ms"], 3)
        api["goal"] = "authenticated GET <= 2x floor"
        figures["api_http"] = api
    figures["lighthouse_up"] = {**up_time_to_ready(), "goal": "<= 5 s"}
    path = write("foundation", figures)
    for name, value in figures.items():
        print(f"{name}: {json.dumps(value)}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
