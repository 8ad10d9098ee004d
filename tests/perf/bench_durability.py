"""Durability benchmark: what keeping every acknowledged write on disk costs, how fast a big data
directory starts, and the crash test's figures. Run with `make bench`.

1. Event append p50/p99 over HTTP with the data directory (journal, fsync per group commit) and with
   the state in memory only, in alternating rounds in one run (goal: durable <= 1.5x at p50).
2. `lighthouse up` to a healthy API on a directory holding 100,000 events and 1,000 open
   elicitations, after a clean stop (one snapshot) and as a crash leaves it (the whole journal to
   replay); and how long the 1,000 interrupted waits take to be running again (goal: ready <= 5 s).
3. Crash runs (tests/integration/test_durability.py): acknowledged writes, lost, duplicated.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import requests

from lighthouse.events import EventStore
from lighthouse.events.types import Probe
from lighthouse_tools.localcloud.cloud import REGION, LocalCloud, LocalCloudOptions
from tests.helpers import signed_session_body
from tests.perf.stats import summarize, write

APPEND_SAMPLES = 300
ROUNDS = 2
EVENTS = 100_000
OPEN_ELICITATIONS = 1_000
START_RUNS = 3
CRASH_RUNS = 5
LIGHTHOUSE = str(Path(sys.executable).parent / "lighthouse")


def _lift_limits() -> None:
    os.environ["LIGHTHOUSE_REQUESTS_PER_MINUTE"] = "100000000"
    os.environ["LIGHTHOUSE_REQUEST_BURST"] = "100000"
    os.environ["LIGHTHOUSE_SESSIONS_PER_MINUTE"] = "100000"
    os.environ["LIGHTHOUSE_RATE_LIMIT_BURST"] = "100000"
    os.environ["LIGHTHOUSE_ELICITATION_CREATES_PER_MINUTE"] = "1000000"
    os.environ["LIGHTHOUSE_ELICITATION_RESPONSES_PER_MINUTE"] = "1000000"
    os.environ["LIGHTHOUSE_ELICITATION_BURST"] = "1000"


def _options(data_dir: Path | None) -> LocalCloudOptions:
    return LocalCloudOptions(aws_port=0, api_port=0, start_schedules=False, verify_layer=False, data_dir=data_dir)


def append_samples(data_dir: Path | None) -> list[float]:
    with LocalCloud(_options(data_dir)) as cloud:
        env = cloud.function_environment()
        client = boto3.client("dynamodb", endpoint_url=cloud.aws_endpoint_url, region_name=REGION)
        store = EventStore.dynamodb(client, env["LIGHTHOUSE_EVENTS_TABLE"], env["LIGHTHOUSE_SNAPSHOTS_TABLE"])
        for _ in range(30):  # warm-up
            store.append(f"warm-{uuid.uuid4().hex}", [Probe(n=1)], expected_version=0)
        samples = []
        for _ in range(APPEND_SAMPLES):
            began = time.perf_counter()
            store.append(f"bench-{uuid.uuid4().hex}", [Probe(n=1)], expected_version=0)
            samples.append((time.perf_counter() - began) * 1000)
        return samples


def write_overhead() -> dict[str, Any]:
    memory: list[float] = []
    durable: list[float] = []
    for _ in range(ROUNDS):
        memory += append_samples(None)
        with tempfile.TemporaryDirectory() as directory:
            durable += append_samples(Path(directory) / "data")
    in_memory, on_disk = summarize(memory), summarize(durable)
    return {
        "in_memory": in_memory,
        "durable": on_disk,
        "p50_ratio": round(on_disk["p50_ms"] / in_memory["p50_ms"], 3),
        "p99_ratio": round(on_disk["p99_ms"] / in_memory["p99_ms"], 3),
        "goal": "durable <= 1.5x in-memory at p50",
    }


def build_directory(data_dir: Path, crash_copy: Path) -> dict[str, float]:
    """1,000 open elicitations through the API, then Probe events (100 per append) up to 100,000."""
    began = time.perf_counter()
    with LocalCloud(_options(data_dir)) as cloud:
        parts = cloud.components()
        secrets_by_agent = {name: parts.agents.register(name, "agent").secret for name in ("asker", "answerer")}
        http = requests.Session()
        token = http.post(f"{cloud.api_url}/sessions", json=signed_session_body("asker", secrets_by_agent["asker"]))
        http.headers["Authorization"] = f"Bearer {token.json()['token']}"
        body = {"to_agent": "answerer", "message": "open", "schema": {"type": "string"}, "timeout_seconds": 3600}
        for _ in range(OPEN_ELICITATIONS):
            created = http.post(f"{cloud.api_url}/elicitation/create", json=body)
            assert created.status_code == 201, created.text
        print(f"  {OPEN_ELICITATIONS} elicitations open ({time.perf_counter() - began:.0f} s)", flush=True)
        stored = sum(1 for _ in _event_items(cloud))
        stream, version = f"filler-{uuid.uuid4().hex}", 0
        while stored < EVENTS:
            count = min(100, EVENTS - stored)
            parts.events.append(stream, [Probe(n=version + i) for i in range(count)], expected_version=version)
            version, stored = version + count, stored + count
            if version >= 10_000:
                stream, version = f"filler-{uuid.uuid4().hex}", 0
                print(f"  {stored} events stored ({time.perf_counter() - began:.0f} s)", flush=True)
        cloud.wait_for_projection(timeout=600)
        time.sleep(1.0)  # the stream consumers' last checkpoints reach the journal
        # A copy taken while it runs is what a crash leaves: no snapshot since the start, a journal
        # to replay (its last record possibly cut off).
        shutil.copytree(data_dir, crash_copy)
    return {"build_s": round(time.perf_counter() - began, 1), "events": stored}


def _event_items(cloud: LocalCloud) -> Any:
    client = cloud.client("dynamodb")
    table = cloud.function_environment()["LIGHTHOUSE_EVENTS_TABLE"]
    for page in client.get_paginator("scan").paginate(TableName=table, ProjectionExpression="stream_id"):
        yield from page["Items"]


def start_up(pristine: Path) -> dict[str, Any]:
    """Time `lighthouse up` (its default workers) to the ready line and a 200 from /health; then how
    long until every interrupted elicitation has a running execution again."""
    ready, healthy, resumed, restored = [], [], [], []
    for _ in range(START_RUNS):
        with tempfile.TemporaryDirectory() as scratch:
            data = Path(scratch) / "data"
            shutil.copytree(pristine, data)
            began = time.perf_counter()
            process = subprocess.Popen(
                [LIGHTHOUSE, "--state-file", f"{scratch}/local.json", "up", "--api-port", "0", "--aws-port", "0",
                 "--mqtt-port", "0", "--data-dir", str(data), "--no-schedules"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=scratch,
            )  # fmt: skip
            assert process.stdout is not None
            lines = []
            for line in process.stdout:
                lines.append(line)
                if line.startswith("Press Ctrl+C"):
                    break
            ready.append(time.perf_counter() - began)
            text = "".join(lines)
            api = next(line.split()[-1] for line in lines if line.strip().startswith("API:"))
            aws = next(line.split()[2] for line in lines if line.strip().startswith("AWS endpoint:"))
            assert requests.get(f"{api}/health", timeout=30).status_code == 200, text
            healthy.append(time.perf_counter() - began)
            restored.append(next(line.strip() for line in lines if line.strip().startswith("Data:")))
            sfn = boto3.client(
                "stepfunctions", endpoint_url=aws, region_name=REGION,
                aws_access_key_id="bench", aws_secret_access_key="bench",
            )  # fmt: skip
            machine = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]
                           if "Elicitation" in m["name"])  # fmt: skip
            while _running(sfn, machine) < OPEN_ELICITATIONS and time.perf_counter() - began < 300:
                time.sleep(0.5)
            resumed.append(time.perf_counter() - began)
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=120)
    middle = START_RUNS // 2
    return {
        "ready_s": sorted(round(s, 2) for s in ready)[middle],
        "healthy_s": sorted(round(s, 2) for s in healthy)[middle],
        "all_waits_resumed_s": sorted(round(s, 2) for s in resumed)[middle],
        "runs": START_RUNS,
        "restore": restored[-1],
        "goal": "healthy <= 5 s",
    }


def _running(sfn: Any, machine: str) -> int:
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine, statusFilter="RUNNING")
    return sum(len(page["executions"]) for page in pages)


def crash_figures() -> dict[str, Any]:
    import random

    from tests.integration.test_durability import crash_run

    runs = []
    with tempfile.TemporaryDirectory() as directory:
        for _ in range(CRASH_RUNS):
            runs.append(crash_run(Path(directory), random.SystemRandom().randrange(1 << 30)))
    return {
        "runs": len(runs),
        "acknowledged_writes": sum(r["acknowledged"] for r in runs),
        "lost": sum(r["lost"] for r in runs),
        "duplicated": sum(r["duplicated"] for r in runs),
        "streams_with_gaps": sum(r["streams_with_gaps"] for r in runs),
        "goal": "lost 0, duplicated 0",
    }


def main() -> None:
    print("Durability benchmark (embedded local cloud on a data directory)", flush=True)
    _lift_limits()
    figures: dict[str, Any] = {}
    if not os.environ.get("BENCH_SKIP_APPEND"):
        figures["append_write_overhead"] = write_overhead()
        print(f"append_write_overhead: {json.dumps(figures['append_write_overhead'])}", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        # BENCH_DURABILITY_DIR keeps the built directories (about 10 minutes to build) for the next run.
        directory = Path(os.environ.get("BENCH_DURABILITY_DIR") or scratch)
        clean, crashed = directory / "clean", directory / "crashed"
        if not (clean / "snapshot.pickle").exists() or not crashed.exists():
            shutil.rmtree(clean, ignore_errors=True)
            shutil.rmtree(crashed, ignore_errors=True)
            figures["directory"] = build_directory(clean, crashed)
            print(f"directory: {json.dumps(figures['directory'])}", flush=True)
        figures["start_after_clean_stop"] = start_up(clean)
        print(f"start_after_clean_stop: {json.dumps(figures['start_after_clean_stop'])}", flush=True)
        figures["start_after_crash"] = start_up(crashed)
        print(f"start_after_crash: {json.dumps(figures['start_after_crash'])}", flush=True)
    figures["crash_test"] = crash_figures()
    print(f"crash_test: {json.dumps(figures['crash_test'])}", flush=True)
    path = write("durability", figures)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
