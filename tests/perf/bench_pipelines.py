"""Pipelines benchmark. Run with `make bench` (or `python -m tests.perf.bench_pipelines`).

Two graphs with the scripted provider — a 10-stage linear pipeline and a 2-branch merge
(start -> two branches -> merge -> end) — run end to end on the embedded local cloud (compiled state
machine, one stage-runner invocation per Task state, every stage recorded in the event store), next
to the same graphs in LangGraph with a SQLite checkpointer (durable after every node), in the same run.
Each stage of both does the same work: take the scripted answer and validate it against the schema.
Then 20 tasks at once: all must complete, none lost.

BENCH_QUICK=1 runs fewer tasks.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Annotated, Any, TypedDict

import yaml
from jsonschema import Draft202012Validator

from lighthouse.auth.tokens import Principal
from lighthouse.composition import Components
from lighthouse.pipelines.json_engine import parse_and_repair
from lighthouse.pipelines.models import CreateTask
from lighthouse_tools.localcloud.cloud import REGION, LocalCloud, LocalCloudOptions
from tests.perf.costing import in_process_counts, priced
from tests.perf.stats import floor, summarize, write

QUICK = os.environ.get("BENCH_QUICK") == "1"
RUNS = 3 if QUICK else 10
CONCURRENT = 20
ADMIN = Principal("bench", "admin", 0, 2**40, "bench")
SCHEMA = {"type": "object", "required": ["step"], "properties": {"step": {"type": "integer"}}}
ANSWER = '{"step": 1}'


def linear_nodes(count: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    nodes = [{"id": f"s{i}", "type": "agent", "agent": "worker"} for i in range(count)]
    edges = [{"from": f"s{i}", "to": f"s{i + 1}"} for i in range(count - 1)]
    return nodes, edges


def branch_nodes() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    nodes = [{"id": n, "type": "agent", "agent": "worker"} for n in ("start", "left", "right", "end")]
    nodes.insert(3, {"id": "join", "type": "merge"})
    edges = [
        {"from": "start", "to": "left"},
        {"from": "start", "to": "right"},
        {"from": "left", "to": "join"},
        {"from": "right", "to": "join"},
        {"from": "join", "to": "end"},
    ]
    return nodes, edges


def config() -> dict[str, str]:
    linear, linear_edges = linear_nodes(10)
    branch, branch_edges = branch_nodes()
    agents = {
        "agents": [
            {"id": "worker", "provider": "scripted", "model": "m", "responses": [ANSWER], "output_schema": SCHEMA}
        ]
    }
    workflows = {
        "workflows": [
            {"name": "linear10", "start": "s0", "nodes": linear, "edges": linear_edges},
            {"name": "branch2", "start": "start", "nodes": branch, "edges": branch_edges},
        ]
    }
    pipelines = {
        "pipelines": [
            {"name": "linear10", "workflow": "linear10", "project": "bench"},
            {"name": "branch2", "workflow": "branch2", "project": "bench"},
        ]
    }
    # No context profile: the comparison is the stage machinery, not memory retrieval.
    return {
        "agents.yaml": yaml.safe_dump(agents),
        "tools.yaml": "tools: []\n",
        "workflow.yaml": yaml.safe_dump(workflows),
        "pipelines.yaml": yaml.safe_dump(pipelines),
        "memory.yaml": yaml.safe_dump({"stores": [{"name": "task", "scope": "task"}], "profiles": []}),
    }


def run_task(parts: Components, pipeline: str) -> tuple[float, str]:
    service = parts.tasks
    began = time.perf_counter()
    task = service.create_task(ADMIN, CreateTask(input={"n": 0}, pipeline=pipeline))
    deadline = time.monotonic() + 120
    while task.status in ("PENDING", "RUNNING") and time.monotonic() < deadline:
        task = service.task(ADMIN, task.task_id, wait_seconds=20)  # woken by the task's own events
    return (time.perf_counter() - began) * 1000, task.status


def lighthouse(stages: dict[str, int]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with LocalCloud(LocalCloudOptions(aws_port=0, api_port=0, start_schedules=False)) as cloud:
        parts = cloud.components()
        parts.pipelines.register(ADMIN, config())
        figures["floor_conditional_put_http"] = floor(
            cloud.aws_endpoint_url, REGION, cloud.function_environment()["LIGHTHOUSE_EVENTS_TABLE"]
        )
        for name, count in stages.items():
            run_task(parts, name)  # warm the containers
            samples, statuses = [], []
            before = in_process_counts(cloud)
            for _ in range(RUNS):
                elapsed, status = run_task(parts, name)
                samples.append(elapsed)
                statuses.append(status)
            summary = summarize(samples)
            per_stage = summary["p50_ms"] / count
            figures[name] = {
                "stages": count,
                "end_to_end": summary,
                "per_stage_ms": round(per_stage, 2),
                "per_stage_ratio_to_floor": round(per_stage / figures["floor_conditional_put_http"]["p50_ms"], 2),
                "completed": statuses.count("COMPLETED"),
                "runs": RUNS,
                # Per stage (a task's creation and completion spread over its stages).
                "cost_per_stage": priced(before, in_process_counts(cloud), RUNS * count),
            }
            print(f"lighthouse {name}: {json.dumps(figures[name])}", flush=True)
        results: list[tuple[float, str]] = []
        lock = threading.Lock()

        def one() -> None:
            outcome = run_task(parts, "linear10")
            with lock:
                results.append(outcome)

        began = time.perf_counter()
        threads = [threading.Thread(target=one) for _ in range(CONCURRENT)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        figures["concurrent_linear10"] = {
            "tasks": CONCURRENT,
            "completed": sum(1 for _, status in results if status == "COMPLETED"),
            "lost": CONCURRENT - len(results),
            "wall_s": round(time.perf_counter() - began, 2),
            "end_to_end": summarize([elapsed for elapsed, _ in results]),
        }
        print(f"lighthouse concurrent: {json.dumps(figures['concurrent_linear10'])}", flush=True)
    return figures


def merge_dicts(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    return {**left, **right}


class State(TypedDict, total=False):
    """LangGraph's state: every node's output, merged (branches write side by side)."""

    outputs: Annotated[dict[str, Any], merge_dicts]


def langgraph(stages: dict[str, int], db: Path) -> dict[str, Any]:
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph

    def stage(name: str) -> Any:
        def run(state: State) -> State:
            return {"outputs": {name: parse_and_repair(ANSWER, SCHEMA).value}}

        return run

    Draft202012Validator.check_schema(SCHEMA)
    connection = sqlite3.connect(db, check_same_thread=False)
    saver = SqliteSaver(connection)
    graphs: dict[str, Any] = {}
    linear = StateGraph(State)
    for i in range(10):
        linear.add_node(f"s{i}", stage(f"s{i}"))
    linear.add_edge(START, "s0")
    for i in range(9):
        linear.add_edge(f"s{i}", f"s{i + 1}")
    linear.add_edge("s9", END)
    graphs["linear10"] = linear.compile(checkpointer=saver)
    branch = StateGraph(State)
    for name in ("start", "left", "right", "join", "end"):
        branch.add_node(name, stage(name))
    branch.add_edge(START, "start")
    branch.add_edge("start", "left")
    branch.add_edge("start", "right")
    branch.add_edge(["left", "right"], "join")
    branch.add_edge("join", "end")
    branch.add_edge("end", END)
    graphs["branch2"] = branch.compile(checkpointer=saver)
    figures: dict[str, Any] = {}
    for name, count in stages.items():
        graph = graphs[name]
        graph.invoke({"outputs": {}}, {"configurable": {"thread_id": uuid.uuid4().hex}})
        samples = []
        for _ in range(RUNS * 5):
            began = time.perf_counter()
            result = graph.invoke({"outputs": {}}, {"configurable": {"thread_id": uuid.uuid4().hex}})
            samples.append((time.perf_counter() - began) * 1000)
            assert len(result["outputs"]) == count
        summary = summarize(samples)
        figures[name] = {"stages": count, "end_to_end": summary, "per_stage_ms": round(summary["p50_ms"] / count, 3)}
        print(f"langgraph {name}: {json.dumps(figures[name])}", flush=True)
    return figures


def main() -> None:
    print("Pipelines benchmark: the local cloud vs LangGraph + SQLite (scripted provider)", flush=True)
    stages = {"linear10": 10, "branch2": 5}
    workdir = Path(tempfile.mkdtemp(prefix="lighthouse-bench-pipelines-"))
    figures: dict[str, Any] = {"langgraph_sqlite": langgraph(stages, workdir / "langgraph.db")}
    figures["lighthouse"] = lighthouse(stages)
    figures["per_stage_ratio"] = {
        name: round(figures["lighthouse"][name]["per_stage_ms"] / figures["langgraph_sqlite"][name]["per_stage_ms"], 1)
        for name in stages
    }
    figures["goal"] = "per-stage overhead p50 <= 2x the conditional PutItem floor; 20 concurrent tasks all complete"
    path = write("pipelines", figures)
    print(f"per_stage_ratio: {json.dumps(figures['per_stage_ratio'])}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
