"""The gate's decision time over the labelled corpus (issue #14): in-process, and over Claude Code's
http hook on `lighthouse up` next to the floor measured in the same run.

    python -m tests.perf.bench_gate_corpus [--no-http]

Uncached: a new gate per pass, so each call is parsed, classified and evaluated by Cedar; cached: the
same gate again (the analysis and the verdict come from its LRU caches). Goal: p99 <= 1 ms uncached.
Over HTTP: every corpus call once, sequentially, through `POST /hooks/claude-code/pre-tool-use`; the
floor is a conditional PutItem into the events table on the same local cloud.
Writes `tests/perf/results/gate_corpus.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from tests.helpers import signed_session_body
from tests.integration.platform import UpProcess
from tests.perf.stats import floor, summarize, write
from tests.validation.scoring import ANSWER, HOME, TMPDIR, corpus, default_gate


def over_http(items: list[dict[str, Any]]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-gate-") as scratch:
        up = UpProcess(Path(scratch), Path(scratch) / "data", workers=2)
        up.start("--param", "ValidationsPerMinute=10000000")
        try:
            operator = up.operator()
            made = operator.call("POST", "/agents", {"agent_id": "bench-gate"})
            secret = made.json()["secret"]
            signed = requests.post(f"{up.api_url}/sessions", json=signed_session_body("bench-gate", secret), timeout=30)
            token = signed.json()["token"]
            hook = requests.post(f"{up.api_url}/hooks/token", headers={"Authorization": f"Bearer {token}"}, timeout=30)
            http = requests.Session()
            http.headers.update({"Authorization": f"Bearer {hook.json()['hook_token']}"})
            samples = []
            for item in items:
                body = {"hook_event_name": "PreToolUse", "cwd": item["cwd"]}
                body |= {"tool_name": item["tool_name"], "tool_input": item["tool_input"]}
                began = time.perf_counter()
                answered = http.post(f"{up.api_url}/hooks/claude-code/pre-tool-use", json=body, timeout=60)
                samples.append((time.perf_counter() - began) * 1000)
                assert answered.json()["hookSpecificOutput"]["permissionDecision"] == item["expect"], item
            environment = up.environment()
            for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                os.environ.setdefault(key, "bench")  # the local cloud takes any
            put_floor = floor(up.aws_endpoint_url, "us-east-1", environment["LIGHTHOUSE_EVENTS_TABLE"])
        finally:
            up.stop_quietly()
    hook = summarize(samples)
    return {"hook": hook, "floor_put": put_floor, "p50_ratio_to_floor": round(hook["p50_ms"] / put_floor["p50_ms"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-http", action="store_true")
    args = parser.parse_args()
    items = list(corpus())
    env = {"HOME": HOME, "TMPDIR": TMPDIR}
    uncached: list[float] = []
    cached: list[float] = []
    for _ in range(3):
        gate = default_gate()
        for samples in (uncached, cached):
            for item in items:
                began = time.perf_counter()
                decided = gate.decide("bench", "agent", item["tool_name"], item["tool_input"], item["cwd"], env)
                samples.append((time.perf_counter() - began) * 1000)
                assert ANSWER[decided.decision] == item["expect"], item
    figures: dict[str, Any] = {"cases": len(items), "uncached": summarize(uncached), "cached": summarize(cached)}
    if not args.no_http:
        figures["http"] = over_http(items)
    print(json.dumps(figures, indent=2))
    print(f"wrote {write('gate_corpus', figures)}")


if __name__ == "__main__":
    main()
