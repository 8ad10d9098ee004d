"""Runs benchmark. Run with `make bench` (or `python -m tests.perf.bench_runs`).

1. Launch -> success of a one-job run (service_map, scripted provider) on the embedded local cloud:
   p50/p99 and the emulated AWS calls, invocations and state transitions one run costs. The run goes
   through its state machine (start, collect, analyse, finish); the fleet inventory it maps is
   recorded beforehand through the fleet's own ingest.
2. With 10,000 runs and 100,000 ledger entries stored (written as the platform writes them: the
   same index items and the same daily aggregates, in batches): p99 of GET /runs/since-last-success,
   /llm/token-stats and /llm/cost-report over HTTP, next to a plain GetItem over HTTP in the same run
   (goal: p99 <= 50 ms). The answers come from the job's index and the daily aggregates: the table
   holds ~120,000 items and none of the three reads more than a few hundred.

BENCH_QUICK=1 runs fewer launches and fewer queries.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import defaultdict
from typing import Any

import boto3
import requests

from lighthouse.agents.models import OPERATOR_ID
from lighthouse.auth.tokens import Principal
from lighthouse.composition import Components
from lighthouse.fleet import contract
from lighthouse.runs.ledger import Prices, entry_item, increments
from lighthouse.runs.models import LaunchRun, LedgerEntry, RunSummary
from lighthouse.runs.store import index_items
from lighthouse_tools.localcloud.cloud import REGION, LocalCloud, LocalCloudOptions
from tests.helpers import signed_session_body
from tests.perf.costing import in_process_counts, priced
from tests.perf.stats import floor, summarize, write

QUICK = os.environ.get("BENCH_QUICK") == "1"
LAUNCHES = 5 if QUICK else 20
QUERIES = 50 if QUICK else 200
RUNS_STORED = 10_000
ENTRIES_STORED = 100_000
DAYS = 365
ADMIN = Principal("bench", "admin", 0, 2**40, "bench")
MODELS = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-3-5-haiku-latest"),
          ("scripted", "scripted-analyst")]  # fmt: skip
JOBS = ["log_triage", "gpu_report", "service_map"]


def seed_inventory(parts: Components) -> None:
    """One agent whose inventory shows a few services, recorded as the fleet ingest records it."""
    parts.agents.register("bench-host", "agent")
    containers = [
        {"id": f"{i:012x}", "name": f"svc{i}", "image": "img:1", "state": "running",
         "labels": {"lighthouse.depends_on": f"svc{i + 1}"} if i < 4 else {}, "ports": [{"PrivatePort": 8000 + i}]}
        for i in range(5)
    ]  # fmt: skip
    payload = {"schema": contract.SCHEMA, "docker": "available", "containers": containers}
    parts.fleet.ingest(contract.topic("bench-host", contract.INVENTORY), payload)


def one_run(parts: Components) -> tuple[float, str]:
    began = time.perf_counter()
    accepted = parts.runs.launch(ADMIN, LaunchRun(job="service_map"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = parts.runs.run(accepted.run_id)
        if run.status in ("success", "failed", "cancelled"):
            return (time.perf_counter() - began) * 1000, run.status
        time.sleep(0.005)
    return (time.perf_counter() - began) * 1000, "timeout"


def launch_to_success(cloud: LocalCloud, parts: Components) -> dict[str, Any]:
    one_run(parts)  # warm the containers
    before = in_process_counts(cloud)
    samples, statuses = [], []
    for _ in range(LAUNCHES):
        elapsed, status = one_run(parts)
        samples.append(elapsed)
        statuses.append(status)
    return {
        "launch_to_success": summarize(samples),
        "succeeded": statuses.count("success"),
        "runs": LAUNCHES,
        "cost_per_run": priced(before, in_process_counts(cloud), LAUNCHES),
    }


def batch_put(dynamodb: Any, table: str, items: list[dict[str, Any]]) -> None:
    for start in range(0, len(items), 25):
        requests_ = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        while requests_:
            left = dynamodb.batch_write_item(RequestItems={table: requests_}).get("UnprocessedItems", {})
            requests_ = left.get(table, [])


def seed_history(dynamodb: Any, table: str, now: float) -> dict[str, Any]:
    """10,000 runs over a year (each job's last success a few runs back) and 100,000 LLM calls."""
    random.seed(7)
    began = time.perf_counter()
    items: list[dict[str, Any]] = []
    for i in range(RUNS_STORED):
        at = now - DAYS * 86400 + i * (DAYS * 86400 / RUNS_STORED)
        job = JOBS[i % 3]
        recent = i >= RUNS_STORED - 30  # the last ten runs of each job: failures and a pending one
        status = ("failed" if i < RUNS_STORED - 3 else "pending") if recent else "success"
        run = RunSummary(run_id=f"run-{i:016x}", status=status, jobs=[job], directive="default", launched_at=at,
                         ended_at=None if status == "pending" else at + 5)  # type: ignore[arg-type]  # fmt: skip
        items.extend(index_items(run))
    batch_put(dynamodb, table, items)
    print(f"seeded {len(items)} run index items in {time.perf_counter() - began:.1f} s", flush=True)
    prices = Prices()
    totals: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    entries: list[dict[str, Any]] = []
    for i in range(ENTRIES_STORED):
        provider, model = MODELS[i % len(MODELS)]
        tokens_in, tokens_out = random.randint(200, 20_000), random.randint(50, 2_000)
        cost, priced_ = prices.cost(provider, model, tokens_in, tokens_out)
        run_index = i % RUNS_STORED
        entry = LedgerEntry(
            call_id=f"llm-{i:012x}", at=now - DAYS * 86400 + run_index * (DAYS * 86400 / RUNS_STORED) + 1,
            source="run", provider=provider, model=model, input_tokens=tokens_in, output_tokens=tokens_out,
            cost_usd=cost, priced=priced_, latency_ms=100.0, run_id=f"run-{run_index:016x}", job=JOBS[run_index % 3],
            agent_id=f"agent-{i % 50}", directive=("default", "thorough", "ops")[i % 3],
        )  # fmt: skip
        entries.append(entry_item(entry))
        for partition_key, counters in increments(entry).items():
            for name, value in counters.items():
                totals[partition_key][name] += value
    batch_put(dynamodb, table, entries)
    print(f"seeded {len(entries)} ledger entries in {time.perf_counter() - began:.1f} s", flush=True)
    aggregates = [
        {"model": {"S": partition}, "key": {"S": key}, **{f"c_{n}": {"N": str(v)} for n, v in counters.items()}}
        for (partition, key), counters in totals.items()
    ]
    batch_put(dynamodb, table, aggregates)
    return {"runs": RUNS_STORED, "ledger_entries": ENTRIES_STORED, "aggregate_items": len(aggregates),
            "index_items": len(items), "seconds": round(time.perf_counter() - began, 1)}  # fmt: skip


def timed(http: requests.Session, url: str, count: int = QUERIES) -> tuple[list[float], Any]:
    samples, last = [], None
    http.get(url, timeout=60)  # warm
    for _ in range(count):
        began = time.perf_counter()
        response = http.get(url, timeout=60)
        samples.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.text
        last = response.json()
    return samples, last


def reads(cloud: LocalCloud, parts: Components) -> dict[str, Any]:
    table = cloud.function_environment()["LIGHTHOUSE_READ_MODELS_TABLE"]
    dynamodb = boto3.client("dynamodb", endpoint_url=cloud.aws_endpoint_url, region_name=REGION)
    seeded = seed_history(parts.client("dynamodb"), table, time.time())
    http = requests.Session()
    proof = signed_session_body(OPERATOR_ID, cloud.operator_credential()[1])
    token = http.post(f"{cloud.api_url}/sessions", json=proof, timeout=10).json()["token"]
    http.headers["Authorization"] = f"Bearer {token}"
    get_item = []
    for _ in range(QUERIES):
        began = time.perf_counter()
        dynamodb.get_item(TableName=table, Key={"model": {"S": "runs-by-time"}, "key": {"S": "x"}})
        get_item.append((time.perf_counter() - began) * 1000)
    figures: dict[str, Any] = {"seeded": seeded, "floor_get_item_http": summarize(get_item)}
    year_ago = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 364 * 86400))
    for name, path, count in (
        ("since_last_success", "/runs/since-last-success?job=log_triage", QUERIES),
        ("token_stats_30_days", "/llm/token-stats", QUERIES),
        ("cost_report_30_days", "/llm/cost-report", QUERIES),
        # Seconds a request on the embedded cloud (see the README): a few samples.
        ("cost_report_365_days", f"/llm/cost-report?since={year_ago}", 10),
    ):
        samples, answer = timed(http, f"{cloud.api_url}{path}", count)
        summary = summarize(samples)
        figures[name] = {
            **summary,
            "ratio_p50_to_get_item": round(summary["p50_ms"] / figures["floor_get_item_http"]["p50_ms"], 2),
            "goal_p99_ms": 50,
            "met": summary["p99_ms"] <= 50,
            "answer_size": {k: len(v) for k, v in answer.items() if isinstance(v, list)},
        }
        print(f"{name}: {json.dumps(figures[name])}", flush=True)
        write("runs_reads", figures)  # as it goes: the slow reads come last
    return figures


def main() -> None:
    # Hundreds of requests a minute from one operator: the per-caller limits would refuse them.
    os.environ["LIGHTHOUSE_REQUESTS_PER_MINUTE"] = "100000000"
    os.environ["LIGHTHOUSE_REQUEST_BURST"] = "100000"
    figures: dict[str, Any] = {"quick": QUICK}
    with LocalCloud(LocalCloudOptions(aws_port=0, api_port=0, start_schedules=False, mqtt=False)) as cloud:
        parts = cloud.components()
        figures["floor_conditional_put_http"] = floor(
            cloud.aws_endpoint_url, REGION, cloud.function_environment()["LIGHTHOUSE_EVENTS_TABLE"]
        )
        seed_inventory(parts)
        figures["one_job_run"] = launch_to_success(cloud, parts)
        print(f"one-job run: {json.dumps(figures['one_job_run'])}", flush=True)
        figures["reads_at_scale"] = reads(cloud, parts)
    path = write("runs", figures)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
