"""Elicitation round trip over HTTP on the local cloud, next to the conditional PutItem floor and to
LangGraph's interrupt/resume with a SQLite checkpointer. Run with `make bench`.

A round trip: the requester creates an elicitation -> the target sees it in GET /elicitation/pending
-> the target responds -> the requester sees `accepted` (GET /elicitation/status?wait=20).
The platform runs as `lighthouse up` in its own process; agents are threads in this one.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from lighthouse_tools.client import LighthouseClient
from tests.perf.costing import counts, priced
from tests.perf.stats import floor, summarize, write

SCHEMA = {"type": "object", "properties": {"approved": {"type": "boolean"}}, "required": ["approved"]}
LEVELS = (1, 50, 200)
ROUNDS = {1: 100, 50: 2, 200: 1}
if os.environ.get("BENCH_QUICK"):
    ROUNDS = {1: 5, 50: 1, 200: 1}
POLL_SECONDS = 0.02


def start_platform(workdir: Path, workers: int | None = None) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    state_file = workdir / "local.json"
    env = {
        **os.environ,
        # Measure latency, not the per-agent limits (a pair asks several times a second here).
        "LIGHTHOUSE_ELICITATION_CREATES_PER_MINUTE": "1000000",
        "LIGHTHOUSE_ELICITATION_RESPONSES_PER_MINUTE": "1000000",
        "LIGHTHOUSE_ELICITATION_BURST": "1000",
        "LIGHTHOUSE_SESSIONS_PER_MINUTE": "1000000",
        "LIGHTHOUSE_REQUESTS_PER_MINUTE": "100000000",
        "LIGHTHOUSE_REQUEST_BURST": "100000",
    }
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "lighthouse"), "--state-file", str(state_file), "up",
         "--api-port", "0", "--aws-port", "0", "--mqtt-port", "0", "--no-schedules",
         *([] if workers is None else ["--workers", str(workers)])],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=workdir,
    )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("Press Ctrl+C"):
            break
    state = json.loads(state_file.read_text())
    state["operator"] = json.loads((workdir / "operator.json").read_text())
    return process, state


def register_pairs(state: dict[str, Any], count: int, tag: str) -> list[tuple[LighthouseClient, LighthouseClient]]:
    operator = state["operator"]
    admin = LighthouseClient(state["api_url"], operator["agent_id"], operator["secret"])

    def registered(name: str) -> LighthouseClient:
        secret = admin.request("POST", "/agents", {"agent_id": name, "role": "agent"})["secret"]
        return LighthouseClient(state["api_url"], name, secret)

    pairs = []
    for index in range(count):
        names = (f"{tag}-ask-{index}", f"{tag}-ans-{index}")
        clients = [registered(name) for name in names]
        for client in clients:
            client._ensure_session()
        pairs.append((clients[0], clients[1]))
    return pairs


def round_trip(asker: LighthouseClient, answerer: LighthouseClient) -> tuple[float, bool]:
    started = time.perf_counter()
    elicitation_id = asker.elicit(answerer.agent_id, "Approve?", SCHEMA, timeout_seconds=600)["elicitation_id"]
    # Long-poll. Questions already answered but not yet gone from the read model answer the poll at
    # once, so back off before asking again (a tight loop here only adds load to the platform).
    pause = POLL_SECONDS
    while not any(e["elicitation_id"] == elicitation_id for e in answerer.pending(wait_seconds=20)):
        time.sleep(pause)
        pause = min(pause * 2, 0.5)
    answerer.respond(elicitation_id, "accept", {"approved": True})
    status = asker.status(elicitation_id, wait_seconds=20)
    return (time.perf_counter() - started) * 1000, status["status"] == "accepted"


def run_concurrently(threads: list[threading.Thread]) -> float:
    """Start every thread, wait for all; returns the wall time in seconds."""
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began


def run_level(pairs: list[tuple[LighthouseClient, LighthouseClient]], rounds: int) -> dict[str, Any]:
    samples: list[float] = []
    delivered, failed = 0, 0
    lock = threading.Lock()
    barrier = threading.Barrier(len(pairs))

    def pair_loop(asker: LighthouseClient, answerer: LighthouseClient) -> None:
        nonlocal delivered, failed
        barrier.wait()
        for _ in range(rounds):
            try:
                elapsed, ok = round_trip(asker, answerer)
            except Exception:
                with lock:
                    failed += 1
                continue
            with lock:
                samples.append(elapsed)
                delivered += ok
                failed += not ok

    wall = run_concurrently([threading.Thread(target=pair_loop, args=pair) for pair in pairs])
    attempted = len(pairs) * rounds
    return {
        "pairs": len(pairs),
        "round_trips": summarize(samples) if samples else {},
        "attempted": attempted,
        "delivered": delivered,
        "failed": failed,
        "delivered_pct": round(100 * delivered / attempted, 2),
        "round_trips_per_s": round(attempted / wall, 1),
    }


def langgraph_level(pairs: int, rounds: int, db: Path) -> dict[str, Any]:
    """The same question through LangGraph: interrupt() asks, Command(resume=...) answers."""
    from typing import TypedDict

    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Command, interrupt

    class State(TypedDict, total=False):
        question: str
        answer: Any

    validator = Draft202012Validator(SCHEMA)

    def ask(state: State) -> State:
        answer = interrupt({"question": state["question"], "schema": SCHEMA})
        validator.validate(answer)
        return {"answer": answer}

    connection = sqlite3.connect(db, check_same_thread=False)
    graph = (
        StateGraph(State)
        .add_node("ask", ask)
        .add_edge(START, "ask")
        .add_edge("ask", END)
        .compile(checkpointer=SqliteSaver(connection))
    )
    samples: list[float] = []
    delivered = 0
    lock = threading.Lock()

    def pair_loop(index: int) -> None:
        nonlocal delivered
        for round_index in range(rounds):
            config = {"configurable": {"thread_id": f"{index}-{round_index}-{uuid.uuid4().hex}"}}
            started = time.perf_counter()
            graph.invoke({"question": "Approve?"}, config)  # the requester asks; the run pauses
            while not graph.get_state(config).interrupts:  # the target sees the pending question
                time.sleep(POLL_SECONDS)
            graph.invoke(Command(resume={"approved": True}), config)  # the target answers
            ok = graph.get_state(config).values.get("answer") == {"approved": True}  # the requester reads it
            with lock:
                samples.append((time.perf_counter() - started) * 1000)
                delivered += ok

    wall = run_concurrently([threading.Thread(target=pair_loop, args=(i,)) for i in range(pairs)])
    return {
        "pairs": pairs,
        "round_trips": summarize(samples),
        "delivered_pct": round(100 * delivered / (pairs * rounds), 2),
        "round_trips_per_s": round(pairs * rounds / wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)))
    parser.add_argument("--workers", type=int, default=None, help="lighthouse up --workers (default: its own)")
    arguments = parser.parse_args()
    levels = [int(level) for level in arguments.levels.split(",")]
    print("Elicitation benchmark: lighthouse up (separate process) over HTTP, vs LangGraph + SQLite", flush=True)
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        process, state = start_platform(workdir, arguments.workers)
        try:
            for key, value in state["environment"].items():
                os.environ.setdefault(key, value)
            os.environ["LIGHTHOUSE_AWS_ENDPOINT_URL"] = state["aws_endpoint_url"]
            os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
            os.environ.setdefault("AWS_DEFAULT_REGION", state["region"])
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "lighthouse-local")
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "lighthouse-local")
            figures: dict[str, Any] = {"lighthouse": {}, "langgraph_sqlite": {}}
            for level in levels:
                pairs = register_pairs(state, level, f"l{level}")
                # Warm up at this concurrency: cold starts (containers, clients) are not what is measured.
                run_level(pairs, 1)
                floor_figures = floor(
                    state["aws_endpoint_url"], state["region"], state["environment"]["LIGHTHOUSE_EVENTS_TABLE"]
                )
                before = counts(state["aws_endpoint_url"])
                result = run_level(pairs, ROUNDS.get(level, 2))
                result["cost"] = priced(before, counts(state["aws_endpoint_url"]), result["attempted"])
                result["floor_conditional_put_http"] = floor_figures
                if result["round_trips"]:
                    result["p50_ratio_to_floor"] = round(result["round_trips"]["p50_ms"] / floor_figures["p50_ms"], 2)
                figures["lighthouse"][str(level)] = result
                print(f"lighthouse pairs={level}: {json.dumps(result)}", flush=True)
                graph = langgraph_level(level, ROUNDS.get(level, 2), workdir / f"langgraph-{level}.db")
                figures["langgraph_sqlite"][str(level)] = graph
                print(f"langgraph pairs={level}: {json.dumps(graph)}", flush=True)
                write("elicitation", figures)  # after every level, so a long run leaves what it measured
        finally:
            process.send_signal(2)
            process.wait(60)
    figures["goals"] = {
        "p50_at_1_pair": "<= 4x floor",
        "round_trips_per_s_at_50_and_200_pairs": ">= 40",
        "p99_at_50_pairs": "<= 2 s",
        "delivered": "100%",
    }
    path = write("elicitation", figures)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
