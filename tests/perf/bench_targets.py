"""The same elicitation round trip on MiniStack (template.yaml deployed with SAM, real Lambda worker
processes) and on the embedded local cloud, in one run; and the Lambda layer's size.

    python -m tests.perf.bench_targets [--warm N] [--cold N]

A round trip: the asker creates a question, the answerer answers it, the asker reads the signed
answer (three HTTP calls). Cold: every function of the stack is given a new configuration first,
which retires its warm worker (as Lambda does), so each call of the round trip starts a new process
that unpacks the layer and imports the handler (and the stream consumers it triggers start cold
too, competing for the two cores). Cold API: `GET /health` after retiring the API function alone.
Warm: the same round trip repeated. Writes
`tests/perf/results/targets.json`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import requests

from lighthouse_tools import ministack
from lighthouse_tools.deploy import BUILD_DIR
from lighthouse_tools.template import PROJECT_ROOT
from tests.helpers import signed_session_body
from tests.integration.platform import UpProcess
from tests.perf.stats import summarize, write

LIGHTHOUSE = str(Path(sys.executable).parent / "lighthouse")
SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


class Target:
    """An API URL, an operator's CLI (its state file) and two signed-in agents."""

    def __init__(self, api_url: str, state_file: Path, run: str) -> None:
        self.api_url, self.state_file = api_url, state_file
        self.asker, self.answerer = self.agent(f"bench-asker-{run}"), self.agent(f"bench-answerer-{run}")
        self.answerer_id = f"bench-answerer-{run}"
        self.steps_ms: list[float] = []  # of the last round trip: when create, then respond, returned

    def agent(self, agent_id: str) -> requests.Session:
        added = subprocess.run(
            [LIGHTHOUSE, "--state-file", str(self.state_file), "agents", "add", agent_id, "--json"],
            capture_output=True, text=True, check=True, timeout=120,
        )  # fmt: skip
        secret = json.loads(added.stdout)["secret"]
        signed = requests.post(f"{self.api_url}/sessions", json=signed_session_body(agent_id, secret), timeout=120)
        signed.raise_for_status()
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {signed.json()['token']}"
        return session

    def round_trip_ms(self) -> float:
        began = time.perf_counter()
        self.steps_ms = []
        created = self.asker.post(
            f"{self.api_url}/elicitation/create",
            json={"to_agent": self.answerer_id, "message": "ok?", "schema": SCHEMA, "timeout_seconds": 300},
            timeout=120,
        )
        created.raise_for_status()
        elicitation_id = created.json()["elicitation_id"]
        self.steps_ms.append((time.perf_counter() - began) * 1000)
        body = {
            "elicitation_id": elicitation_id,
            "action": "accept",
            "data": {"ok": True},
            "nonce": secrets.token_hex(16),
        }
        self.answerer.post(f"{self.api_url}/elicitation/respond", json=body, timeout=120).raise_for_status()
        self.steps_ms.append((time.perf_counter() - began) * 1000)
        status = self.asker.get(f"{self.api_url}/elicitation/status/{elicitation_id}?wait=20", timeout=120).json()
        assert status.get("status") == "accepted", status
        return (time.perf_counter() - began) * 1000


# As the embedded benchmarks do: the per-agent rate limits would otherwise pace the round trips.
UNLIMITED = {
    "LIGHTHOUSE_REQUESTS_PER_MINUTE": "100000000",
    "LIGHTHOUSE_REQUEST_BURST": "100000",
    "LIGHTHOUSE_ELICITATION_CREATES_PER_MINUTE": "1000000",
    "LIGHTHOUSE_ELICITATION_RESPONSES_PER_MINUTE": "1000000",
    "LIGHTHOUSE_ELICITATION_BURST": "1000",
}


def reconfigure(endpoint: str, stack: str, changes: dict[str, str], only: str = "") -> None:
    """Add `changes` to every function's environment. A configuration change retires the function's
    warm worker, as on Lambda: the next call of each is a cold start."""
    import boto3

    kw: dict[str, Any] = {"endpoint_url": endpoint, "region_name": "us-east-1"}
    kw |= {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    functions = boto3.client("lambda", **kw)
    for page in functions.get_paginator("list_functions").paginate():
        for function in page["Functions"]:
            if not function["FunctionName"].startswith(f"{stack}-{only}"):
                continue
            variables = dict(function.get("Environment", {}).get("Variables", {}))
            variables.update(changes)
            functions.update_function_configuration(
                FunctionName=function["FunctionName"], Environment={"Variables": variables}
            )


def layer_size() -> dict[str, float]:
    layer = BUILD_DIR / "LighthouseLayer"
    files = [p for p in layer.rglob("*") if p.is_file()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(layer))
    return {
        "unzipped_mb": round(sum(p.stat().st_size for p in files) / 2**20, 1),
        "zipped_mb": round(len(buffer.getvalue()) / 2**20, 1),
        "files": len(files),
    }


def on_ministack(workdir: Path, warm: int, cold: int) -> dict[str, Any]:
    state_file = workdir / "ministack" / "local.json"
    with ministack.running(workdir / "ministack.log") as endpoint:
        began = time.monotonic()
        deployed = subprocess.run(
            [LIGHTHOUSE, "--state-file", str(state_file), "deploy", "--endpoint", endpoint],
            capture_output=True, text=True, cwd=PROJECT_ROOT, check=False,
        )  # fmt: skip
        if deployed.returncode != 0:
            raise SystemExit(f"deploy failed:\n{deployed.stdout[-3000:]}\n{deployed.stderr[-3000:]}")
        deploy_seconds = time.monotonic() - began
        state = json.loads(state_file.read_text())
        began = time.perf_counter()
        health = requests.get(f"{state['api_url']}/health", timeout=120)
        first_health_ms = (time.perf_counter() - began) * 1000
        assert health.status_code == 200, health.text
        reconfigure(endpoint, state["stack_name"], UNLIMITED)
        target = Target(state["api_url"], state_file, secrets.token_hex(3))
        warm_samples = [target.round_trip_ms() for _ in range(warm)]
        cold_samples, cold_health, cold_steps = [], [], []
        for generation in range(cold):
            reconfigure(endpoint, state["stack_name"], {"LIGHTHOUSE_BENCH_GENERATION": str(generation)})
            cold_samples.append(target.round_trip_ms())
            cold_steps.append([round(step) for step in target.steps_ms])
        for generation in range(cold):
            reconfigure(endpoint, state["stack_name"], {"LIGHTHOUSE_BENCH_API": str(generation)}, "ApiFunction")
            began = time.perf_counter()
            requests.get(f"{state['api_url']}/health", timeout=120).raise_for_status()
            cold_health.append((time.perf_counter() - began) * 1000)
    return {
        "deploy_seconds": round(deploy_seconds, 1),
        "first_health_ms": round(first_health_ms, 1),
        "cold_api_health": summarize(cold_health),
        "cold_round_trip": summarize(cold_samples),
        "cold_round_trip_steps_ms": cold_steps,  # when create, then respond, returned
        "warm_round_trip": summarize(warm_samples),
    }


def on_embedded(workdir: Path, warm: int) -> dict[str, Any]:
    up = UpProcess(workdir / "embedded", workdir / "embedded" / "data", workers=2)
    up.workdir.mkdir(parents=True)
    up.start()
    try:
        target = Target(up.api_url, up.state_file, secrets.token_hex(3))
        first = target.round_trip_ms()
        samples = [target.round_trip_ms() for _ in range(warm)]
    finally:
        up.stop_quietly()
    return {"first_round_trip_ms": round(first, 1), "warm_round_trip": summarize(samples)}


def main() -> None:
    parser = argparse.ArgumentParser()
    quick = bool(os.environ.get("BENCH_QUICK"))
    parser.add_argument("--warm", type=int, default=10 if quick else 30)
    parser.add_argument("--cold", type=int, default=2 if quick else 5)
    parser.add_argument("--ministack-only", action="store_true", help="e.g. to measure another layer build")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-targets-") as scratch:
        workdir = Path(scratch)
        figures["ministack"] = on_ministack(workdir, args.warm, args.cold)
        figures["layer"] = layer_size()
        if not args.ministack_only:
            figures["embedded"] = on_embedded(workdir, args.warm)
            ratio = figures["ministack"]["warm_round_trip"]["p50_ms"] / figures["embedded"]["warm_round_trip"]["p50_ms"]
            figures["warm_ratio_ministack_to_embedded"] = round(ratio, 2)
    print(json.dumps(figures, indent=2))
    print(f"wrote {write('targets' if not args.ministack_only else 'targets_ministack', figures)}")


if __name__ == "__main__":
    main()
