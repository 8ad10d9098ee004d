"""Runs on the local cloud (issue #16): each example job end to end with a `lighthouse agent-core`
whose Docker socket is a Docker Engine API test server, the allowlist refusing what it does not
list, a failing job failing its run, cancel, directives' versions, since-last-success, the ledger's
reports, and signed notifications a receiver verifies (and whose replay it refuses)."""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from lighthouse.agents.models import OPERATOR_ID
from lighthouse.composition import Components
from lighthouse.fleet import contract
from lighthouse.runs.webhooks import SIGNATURE_HEADER, SignatureError, verify
from lighthouse_tools.localcloud.cloud import LocalCloud
from tests.docker_engine import DockerEngine, FixtureContainer
from tests.fleet_helpers import AgentCore, core_environment
from tests.integration.conftest import AgentClient, eventually

pytestmark = pytest.mark.integration

WEB, DB, HIDDEN, CACHE = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)
MARKER = f"MARKER-{secrets.token_hex(8)}"  # in a log line the prompts carry, and in a model's answer
NVIDIA_SMI = """#!/bin/sh
echo "0, NVIDIA A100-SXM4-40GB, 97, 39000, 40960, 91"
echo "1, NVIDIA A100-SXM4-40GB, 1, 12000, 40960, 40"
"""


def fixture_containers(now: float) -> list[FixtureContainer]:
    return [
        FixtureContainer(
            WEB,
            "web",
            "nginx:1.27",
            labels={"com.docker.compose.service": "web", "com.docker.compose.depends_on": "db:service_started:false"},
            ports=[{"PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
            logs=[
                (now - 30, "stdout", "INFO GET / 200 3ms"),
                (now - 25, "stdout", f"INFO session opened for {MARKER}"),
                (now - 20, "stderr", "ERROR upstream connect failed: connection refused (db:5432)"),
                (now - 10, "stderr", "ERROR upstream connect failed: connection refused (db:5433)"),
                (now - 5, "stdout", "WARN slow request 2300ms"),
            ],
        ),
        FixtureContainer(
            DB,
            "db",
            "postgres:16",
            ports=[{"PrivatePort": 5432, "Type": "tcp"}],
            logs=[(now - 15, "stderr", "FATAL: could not write to file: No space left on device")],
        ),
        FixtureContainer(HIDDEN, "vault", "vault:1.17", logs=[(now - 1, "stdout", "INFO sealed")]),
        FixtureContainer(CACHE, "cache", "redis:7", state="exited"),
    ]


@pytest.fixture(scope="module")
def operator(cloud: LocalCloud) -> AgentClient:
    return AgentClient(cloud.api_url, OPERATOR_ID, cloud.operator_credential()[1])


@pytest.fixture(scope="module")
def host(
    cloud: LocalCloud, parts: Components, operator: AgentClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AgentCore]:
    """One agent-core on a host whose Docker Engine is the test server and whose GPUs nvidia-smi shows."""
    directory = tmp_path_factory.mktemp("host")
    engine = DockerEngine(directory / "docker.sock", fixture_containers(time.time()))
    smi = directory / "nvidia-smi"
    smi.write_text(NVIDIA_SMI)
    smi.chmod(0o755)
    agent_id = f"host-{secrets.token_hex(4)}"
    secret = parts.agents.register(agent_id, "agent").secret
    env = {"LIGHTHOUSE_DOCKER_SOCKET": str(engine.socket_path), "LIGHTHOUSE_NVIDIA_SMI": str(smi)}
    core = AgentCore(core_environment(directory / "venv"), agent_id, secret, cloud.api_url, directory / agent_id, env)

    def inventory_seen() -> bool:
        response = operator.get(f"/fleet/agents/{agent_id}")
        snapshot = response.json().get("snapshots", {}).get(contract.INVENTORY) if response.ok else None
        return bool(snapshot and snapshot.get("containers"))

    eventually(inventory_seen, timeout=60)
    assert operator.put("/allowlist", {"entries": [
        {"container_id": WEB[:12], "enabled": True, "tags": ["frontend"], "description": "the web front"},
        {"container_id": DB[:12], "enabled": True, "tags": ["database"]},
        {"container_id": CACHE[:12], "enabled": False},
    ]}).status_code == 200  # fmt: skip
    yield core
    core.stop()
    engine.close()


def finished(client: AgentClient, run_id: str, timeout: float = 90) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        run = client.get(f"/runs/{run_id}").json()
        return run if run["status"] in ("success", "failed", "cancelled") else None

    return dict(eventually(ended, timeout=timeout, interval=0.3))


def launch(client: AgentClient, body: dict[str, Any]) -> str:
    response = client.post("/runs", body)
    assert response.status_code == 202, response.text
    return str(response.json()["run_id"])


def test_the_inventory_shows_each_container_and_whether_jobs_may_touch_it(
    operator: AgentClient, host: AgentCore
) -> None:
    inventory = operator.get("/inventory").json()
    by_name = {c["name"]: c for c in inventory["containers"]}
    assert set(by_name) >= {"web", "db", "vault", "cache"}
    assert by_name["web"]["allowlisted"]
    assert by_name["web"]["enabled"]
    assert not by_name["vault"]["allowlisted"]
    assert by_name["cache"]["allowlisted"]
    assert not by_name["cache"]["enabled"]
    assert by_name["web"]["agent_id"] == host.agent_id
    assert inventory["agents"][host.agent_id]["docker"] == "available"


def test_log_triage_runs_end_to_end_and_keeps_only_its_report(
    operator: AgentClient, host: AgentCore, cloud: LocalCloud
) -> None:
    run_id = launch(operator, {"job": "log_triage", "parameters": {"since_seconds": 3600}})
    run = finished(operator, run_id)
    assert run["status"] == "success", run
    job = run["jobs"][0]
    assert set(job["collections"]) == {WEB[:12], DB[:12]}  # the enabled allowlisted containers only
    report = operator.get(f"/runs/{run_id}/report").json()
    assert {a["name"] for a in report["artifacts"]} == {"triage.json", "triage.md"}
    artifact = next(a for a in report["artifacts"] if a["name"] == "triage.json")
    downloaded = requests.get(artifact["url"], timeout=10)
    assert downloaded.status_code == 200
    triage = downloaded.json()
    errors = {f["error"]: f for f in triage["findings"]}
    refused = next(f for e, f in errors.items() if "connection refused" in e)
    assert refused["count"] == 2
    assert "dependency" in refused["likely_cause"]
    assert any(f["severity"] == "critical" and f["container"] == DB[:12] for f in triage["findings"])
    assert report["tokens"]["total"] > 0
    assert report["llm_calls"] == 1
    assert report["duration_seconds"] > 0
    # The raw logs were deleted once the report existed.
    s3 = cloud.client("s3")
    bucket = cloud.stack.outputs["WorkspaceBucketName"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"runs/{run_id}/").get("Contents", [])]
    assert sorted(k.rsplit("/", 1)[1] for k in keys) == ["triage.json", "triage.md"]
    assert not s3.list_objects_v2(Bucket=bucket, Prefix=f"collected/runs/{run_id}/").get("Contents")


def test_gpu_report_flags_a_hot_gpu_and_an_idle_one(operator: AgentClient, host: AgentCore) -> None:
    run_id = launch(operator, {"job": "gpu_report", "targets": [host.agent_id]})
    run = finished(operator, run_id)
    assert run["status"] == "success", run
    report = operator.get(f"/runs/{run_id}/report").json()
    gpus = requests.get(next(a["url"] for a in report["artifacts"] if a["name"] == "gpus.json"), timeout=10).json()
    assert len(gpus["gpus"]) == 2
    assert any("91" in anomaly and "above" in anomaly for anomaly in gpus["anomalies"])
    assert any("idle" in anomaly for anomaly in gpus["anomalies"])


def test_service_map_draws_services_and_their_dependencies(operator: AgentClient, host: AgentCore) -> None:
    run_id = launch(operator, {"job": "service_map"})
    assert finished(operator, run_id)["status"] == "success"
    report = operator.get(f"/runs/{run_id}/report").json()
    mermaid = requests.get(next(a["url"] for a in report["artifacts"] if a["name"] == "service_map.mmd"), timeout=10)
    assert mermaid.text.startswith("graph LR")
    assert "web -->|compose depends_on| db" in mermaid.text
    services = requests.get(next(a["url"] for a in report["artifacts"] if a["name"] == "service_map.json"), timeout=10)
    names = {s["name"] for s in services.json()["services"]}
    assert {"web", "db", "vault"} <= names
    assert "cache" not in names


def test_a_container_not_on_the_allowlist_is_refused_before_any_command_and_recorded(
    operator: AgentClient, host: AgentCore, parts: Components
) -> None:
    run_id = launch(operator, {"job": "log_triage", "targets": [HIDDEN[:12], CACHE[:12]]})
    run = finished(operator, run_id)
    assert run["status"] == "failed"
    job = run["jobs"][0]
    assert job["collections"] == {}
    assert job["refused"] == {HIDDEN[:12]: "not on the allowlist", CACHE[:12]: "disabled on the allowlist"}
    assert "not on the allowlist" in run["error"]
    recorded = [e.event.TYPE for e in parts.events.load(f"run#{run_id}")]
    assert recorded.count("RUN_COLLECTION_REFUSED") == 2


def test_a_failing_job_fails_its_run_with_the_jobs_error(operator: AgentClient, host: AgentCore) -> None:
    body = {"job": "service_map", "llm": {"provider": "openai", "model": "gpt-4o-mini"}}
    run = finished(operator, launch(operator, body))
    assert run["status"] == "failed"
    assert run["jobs"][0]["status"] == "failed"
    assert "needs a connection" in run["jobs"][0]["error"]
    assert "service_map[0]" in run["error"]
    assert "needs a connection" in run["error"]


def test_cancel_ends_a_run_and_a_second_cancel_is_a_conflict(
    operator: AgentClient, host: AgentCore, cloud: LocalCloud
) -> None:
    run_id = launch(operator, {"job": "log_triage"})
    cancelled = operator.post(f"/runs/{run_id}/cancel", {})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    time.sleep(1.5)  # a step that was already running records nothing after the end
    assert operator.get(f"/runs/{run_id}").json()["status"] == "cancelled"
    again = operator.post(f"/runs/{run_id}/cancel", {})
    assert again.status_code == 409
    # What the agent uploaded for the cancelled run is deleted once its collections settled.
    s3, bucket = cloud.client("s3"), cloud.stack.outputs["WorkspaceBucketName"]
    eventually(lambda: not s3.list_objects_v2(Bucket=bucket, Prefix=f"collected/runs/{run_id}/").get("Contents"),
               timeout=30)  # fmt: skip


def test_since_last_success_lists_the_runs_after_the_last_good_one(operator: AgentClient, host: AgentCore) -> None:
    good = finished(operator, launch(operator, {"job": "service_map"}))
    bad = finished(operator, launch(operator, {"job": "service_map", "llm": {"provider": "anthropic"}}))
    pending = launch(operator, {"job": "service_map"})
    answer = operator.get("/runs/since-last-success?job=service_map").json()
    assert answer["last_success"]["run_id"] == good["run_id"]
    assert [r["run_id"] for r in answer["runs"]] == [pending, bad["run_id"]]
    finished(operator, pending)
    assert operator.get("/runs/since-last-success?job=nope").status_code == 404


def test_directives_are_versioned_and_a_run_keeps_the_version_it_was_launched_under(
    operator: AgentClient, host: AgentCore
) -> None:
    directive_id = f"ops-{secrets.token_hex(3)}"
    first = operator.put(f"/directives/{directive_id}", {"name": "Ops", "goals": ["find outages"]})
    assert first.status_code == 200
    assert first.json()["version"] == 1
    assert first.json()["type"] == "D4"
    run_id = launch(operator, {"job": "service_map", "directive": directive_id})
    second = operator.put(f"/directives/{directive_id}", {"name": "Ops", "goals": ["find outages", "be brief"]})
    assert second.json()["version"] == 2
    same = operator.put(f"/directives/{directive_id}", {"name": "Ops", "goals": ["find outages", "be brief"]})
    assert same.json()["version"] == 2  # the same content again is no new version
    run = operator.get(f"/runs/{run_id}").json()
    assert run["directive"]["version"] == 1
    assert run["directive"]["goals"] == ["find outages"]
    versions = operator.get(f"/directives/{directive_id}/versions").json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert operator.get(f"/directives/{directive_id}?version=1").json()["goals"] == ["find outages"]
    assert operator.put("/directives/default", {"name": "x", "goals": ["y"]}).status_code == 409
    listed = {d["directive_id"]: d["type"] for d in operator.get("/directives").json()["directives"]}
    assert listed["default"] == "D1"
    assert listed[directive_id] == "D4"
    finished(operator, run_id)


def test_the_ledger_reports_tokens_and_cost_by_model_directive_and_run(operator: AgentClient, host: AgentCore) -> None:
    run_id = launch(operator, {"job": "service_map"})
    finished(operator, run_id)
    stats = operator.get("/llm/token-stats").json()
    scripted = next(row for row in stats["by_model"] if row["key"] == "scripted/scripted-analyst")
    assert scripted["calls"] >= 1
    assert scripted["input_tokens"] > 0
    assert any(row["key"] == "scripted" for row in stats["by_provider"])
    cost = operator.get("/llm/cost-report").json()
    assert any(row["key"] == run_id for row in cost["by_run"])
    assert any(row["key"] == "default" for row in cost["by_directive"])
    assert any(row["key"] == OPERATOR_ID for row in cost["by_agent"])
    assert operator.get("/llm/usage-by-directive").json()["directives"]
    refused = operator.get("/llm/cost-report?since=2026-12-31&until=2026-01-01")
    assert refused.status_code == 422
    assert "since is after until" in refused.text


class Receiver:
    """A webhook receiver as a user writes one: verify the signature, refuse a delivery seen before."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.delivered: list[dict[str, Any]] = []
        self.refused: list[str] = []
        self.seen: set[str] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.receive(body, self.headers.get(SIGNATURE_HEADER, ""))
                self.send_response(status)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def receive(self, body: bytes, header: str) -> int:
        try:
            verify(self.key, body, header)
        except SignatureError as error:
            self.refused.append(str(error))
            return 401
        payload = json.loads(body)
        if payload["delivery_id"] in self.seen:
            self.refused.append("replay")
            return 409
        self.seen.add(payload["delivery_id"])
        self.delivered.append({"payload": payload, "body": body, "header": header})
        return 204


def test_a_finished_run_is_notified_signed_and_a_replay_is_refused(operator: AgentClient, host: AgentCore) -> None:
    key = bytes.fromhex(operator.get("/webhooks/signing-key").json()["key_hex"])
    receiver = Receiver(key)
    try:
        run_id = launch(operator, {"job": "service_map", "notify_url": receiver.url})
        finished(operator, run_id)
        delivery = eventually(lambda: receiver.delivered, timeout=30)[0]
        assert delivery["payload"]["run_id"] == run_id
        assert delivery["payload"]["status"] == "success"
        # The same request again (a replay) is refused, and so is a forged body.
        replayed = requests.post(
            receiver.url, data=delivery["body"], headers={SIGNATURE_HEADER: delivery["header"]}, timeout=10
        )
        assert replayed.status_code == 409
        forged = requests.post(receiver.url, data=delivery["body"].replace(b"success", b"failed"),
                               headers={SIGNATURE_HEADER: delivery["header"]}, timeout=10)  # fmt: skip
        assert forged.status_code == 401
        with pytest.raises(SignatureError, match="old"):
            verify(key, delivery["body"], delivery["header"], now=lambda: time.time() + 3600)
    finally:
        receiver.server.shutdown()


def test_bad_launches_are_refused_with_a_clear_error_and_record_nothing(operator: AgentClient, host: AgentCore) -> None:
    before = operator.get("/runs?limit=200").json()["runs"]
    cases = [
        ({"job": "no_such_job"}, 404, "no job template"),
        ({"job": "log_triage", "parameters": {"since_seconds": 5}}, 422, "since_seconds"),
        ({"job": "log_triage", "parameters": {"rm": "-rf"}}, 422, "Additional properties"),
        ({}, 422, "needs `job`"),
        ({"job": "log_triage", "directive": "unknown-directive"}, 404, "no directive"),
        ({"job": "log_triage", "notify_url": "file:///etc/passwd"}, 422, "notify_url"),
    ]
    for body, status, message in cases:
        response = operator.post("/runs", body)
        assert response.status_code == status, (body, response.text)
        assert message in response.text, (body, response.text)
    assert operator.get("/runs?limit=200").json()["runs"] == before
    # A collect command only a run may send: refused over the fleet's API, nothing recorded.
    refused = operator.post(f"/fleet/agents/{host.agent_id}/commands",
                            {"type": "collect", "kind": "logs", "upload_url": "http://example.com/x"})  # fmt: skip
    assert refused.status_code == 422
    assert "sent by runs" in refused.text
    assert operator.get("/runs/run-0000000000000000").status_code == 404
    assert operator.get("/health").status_code == 200
    assert operator.get("/runs/..%2f..").status_code in (400, 404)


def test_only_admins_change_the_allowlist(new_agent: Any, host: AgentCore) -> None:
    agent = new_agent("agent")
    assert agent.put("/allowlist", {"entries": []}).status_code == 403
    assert agent.get("/allowlist").status_code == 200
    expert = new_agent("expert")
    assert expert.post("/runs", {"job": "service_map"}).status_code == 403


class FakeOpenAI:
    """An OpenAI-compatible chat completions server: it records the prompts it gets and answers a
    valid triage report with an extra field (the model's musings) that holds the marker."""

    def __init__(self) -> None:
        self.prompts: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.prompts.append(json.dumps(request["messages"]))
                report = {"summary": "2 errors", "findings": [], "next_steps": ["look at db"], "musings": MARKER}
                body = json.dumps({
                    "choices": [{"message": {"role": "assistant", "content": json.dumps(report)}}],
                    "usage": {"prompt_tokens": 1200, "completion_tokens": 80},
                }).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.dumps({**record.__dict__, "msg": record.getMessage()}, default=str))


def everything_stored(cloud: LocalCloud) -> str:
    """Every item of every table and every object of every bucket, as text."""
    dynamodb, s3 = cloud.client("dynamodb"), cloud.client("s3")
    parts: list[str] = []
    for table in dynamodb.list_tables()["TableNames"]:
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            parts.append(json.dumps(page["Items"], default=str))
    for bucket in s3.list_buckets()["Buckets"]:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            for item in page.get("Contents", []):
                parts.append(s3.get_object(Bucket=bucket["Name"], Key=item["Key"])["Body"].read().decode("latin-1"))
    return "\n".join(parts)


def test_no_prompt_or_response_content_is_stored_logged_or_counted(
    operator: AgentClient, host: AgentCore, cloud: LocalCloud
) -> None:
    # GIVEN a model whose prompts carry the marker (a log line) and whose answer carries it too
    model = FakeOpenAI()
    lines = Lines()
    loggers = [logging.getLogger(name) for name in list(logging.Logger.manager.loggerDict) if "lighthouse" in name]
    levels = [each.level for each in loggers]
    for each in loggers:
        each.addHandler(lines)
        each.setLevel(logging.DEBUG)
    try:
        put = operator.put("/connections/fake-openai", {"provider": "openai", "base_url": model.url, "api_key": "k"})
        assert put.status_code == 200, put.text
        # WHEN a run asks it
        body = {"job": "log_triage", "targets": [WEB[:12]],
                "llm": {"provider": "openai", "model": "gpt-4o-mini", "connection": "fake-openai"}}  # fmt: skip
        run = finished(operator, launch(operator, body))
    finally:
        for each, level in zip(loggers, levels, strict=True):
            each.removeHandler(lines)
            each.setLevel(level)
        model.server.shutdown()
    assert run["status"] == "success", run
    assert any(MARKER in prompt for prompt in model.prompts)  # the marker did reach the model
    assert run["jobs"][0]["tokens"] == 1280
    # THEN the marker is in no table item, no S3 object, no log line and no metric
    assert MARKER not in everything_stored(cloud)
    assert lines.lines, "the platform logged nothing: the log check would prove nothing"
    assert not [line for line in lines.lines if MARKER in line]
    assert MARKER not in host.log.read_text()
    stats = operator.get("/llm/token-stats").text + operator.get("/llm/cost-report").text
    assert MARKER not in stats
    priced = operator.get(f"/runs/{run['run_id']}/report").json()
    assert priced["cost_usd"] > 0  # gpt-4o-mini is priced by genai-prices


def test_the_ledger_entry_model_has_no_field_that_could_hold_content() -> None:
    from lighthouse.runs.models import LedgerEntry

    free_text = {
        name: field.annotation for name, field in LedgerEntry.model_fields.items()
        if "str" in str(field.annotation) and not any(
            getattr(m, "max_length", None) or getattr(m, "pattern", None) for m in field.metadata
        )
    }  # fmt: skip
    assert free_text == {}, "every text field of a ledger entry is a bounded identifier"
    with pytest.raises(ValueError, match="Extra inputs"):
        LedgerEntry.model_validate({**_entry(), "prompt": "hello"})


def _entry() -> dict[str, Any]:
    return {
        "call_id": "llm-0123456789", "at": 1.0, "source": "run", "provider": "openai", "model": "gpt-4o",
        "input_tokens": 1, "output_tokens": 1, "cost_usd": 0.0, "priced": True, "latency_ms": 1.0,
    }  # fmt: skip


def test_metrics_count_runs_by_job_and_outcome_and_tokens_by_day(operator: AgentClient, host: AgentCore) -> None:
    finished(operator, launch(operator, {"job": "service_map"}))
    metrics = operator.get("/metrics/json").json()
    service_map = next(j for j in metrics["jobs"] if j["job"] == "service_map")
    assert service_map["runs"]["success"] >= 1
    assert service_map["runs"]["failed"] >= 1
    assert 0 < service_map["success_rate"] < 1
    assert service_map["run_seconds_sum"] > 0
    assert metrics["llm_by_day"][-1]["input_tokens"] > 0
    text = operator.get("/metrics")
    assert text.headers["Content-Type"].startswith("text/plain")
    assert 'lighthouse_runs_total{job="service_map",status="success"}' in text.text
    assert "# TYPE lighthouse_llm_cost_usd_total counter" in text.text


def test_a_cron_schedule_launches_each_occurrence_once(cloud: LocalCloud, parts: Components, host: AgentCore) -> None:
    # GIVEN service_map scheduled every minute (the scheduler ticks every 1.2 s at this time scale and
    # looks back 5 minutes, so every tick sees the same occurrences again)
    with cloud.reconfigured(LIGHTHOUSE_RUN_SCHEDULES='{"service_map": "* * * * *"}'):

        def scheduled() -> list[str]:
            runs = cloud.components().runs.runs(200, None, "service_map", None).runs
            return sorted(r.run_id for r in runs if r.run_id.startswith("sched-"))

        first = eventually(lambda: len(scheduled()) >= 5 and scheduled(), timeout=60)
        time.sleep(3)  # more ticks
        # THEN each of the five minutes in the look-back window launched one run, and no tick another
        assert scheduled()[: len(first)] == first
        assert len(scheduled()) - len(first) <= 1  # at most a new minute began meanwhile
    listing = cloud.components().runs.run(first[0])
    assert listing.schedule == "* * * * *"
    assert listing.launched_by == "scheduler"
