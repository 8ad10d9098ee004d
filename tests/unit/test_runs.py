"""Runs' pure parts: the run fold and its decisions, directive versions, since-last-success on
hand-built histories, prices against genai-prices, the jobs' drafts, redaction of each secret kind,
webhook signatures, and the MCP transport's route matching."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from genai_prices import Usage, calc_price

from lighthouse.errors import Conflict, ValidationFailed
from lighthouse.events.model import StoredEvent
from lighthouse.lambda_transport import match
from lighthouse.logs import redact
from lighthouse.runs import analysis, logic
from lighthouse.runs.catalog import D1_DIRECTIVES, TEMPLATES
from lighthouse.runs.ledger import Price, Prices, parse_instant, window
from lighthouse.runs.models import (
    DirectiveState,
    RunFinished,
    RunJobCollecting,
    RunJobFailed,
    RunJobSucceeded,
    RunLaunched,
    RunStarted,
    RunState,
    RunSummary,
)
from lighthouse.runs.webhooks import SignatureError, sign, verify


def fold(*events: Any) -> RunState:
    state = logic.RUN_FOLD.initial()
    for version, event in enumerate(events, 1):
        state = logic.RUN_FOLD.evolve(state, StoredEvent("run#r", version, event, "", 0.0))
    return state


def launched(jobs: int = 1) -> RunLaunched:
    return RunLaunched(
        run_id="run-0123456789abcdef",
        jobs=[{"job": "service_map", "version": 1, "parameters": {}, "targets": []} for _ in range(jobs)],
        directive=D1_DIRECTIVES["default"].model_dump(mode="json"),
        llm={"provider": "scripted", "model": "m", "connection": None},
        by="op",
        at=100.0,
    )


def summary(run_id: str, status: str, at: float) -> RunSummary:
    return RunSummary(run_id=run_id, status=status, jobs=["log_triage"], directive="default", launched_at=at)  # type: ignore[arg-type]


# ---- the run ----------------------------------------------------------------------------------


def test_a_run_succeeds_only_when_every_job_succeeded() -> None:
    state = fold(launched(2), RunStarted(execution="x", at=101.0), RunJobSucceeded(index=0, tokens=5, cost_usd=0.1,
                 llm_calls=1, at=102.0), RunJobFailed(index=1, error="boom", at=103.0))  # fmt: skip
    assert logic.outcome(state) == ("failed", "service_map[1]: boom")
    state = fold(launched(1), RunJobSucceeded(index=0, tokens=5, cost_usd=0.1, llm_calls=1, at=102.0))
    assert logic.outcome(state) == ("success", None)
    assert logic.outcome(fold(launched(1))) == ("failed", "a job did not finish")


def test_after_the_end_job_steps_record_nothing_and_a_second_cancel_is_a_conflict() -> None:
    cancelled = fold(launched(1), RunFinished(status="cancelled", by="op", at=105.0))
    assert cancelled.jobs[0].status == "cancelled"
    assert logic.job_step(cancelled, RunJobCollecting(index=0, collections={}, refused={}, at=106.0)) == []
    with pytest.raises(Conflict, match="already ended"):
        logic.finish(cancelled, RunFinished(status="cancelled", by="op", at=107.0))
    assert logic.finish(cancelled, RunFinished(status="success", at=107.0)) == []  # the state machine's finish
    with pytest.raises(ValidationFailed, match="no job 3"):
        logic.job_step(fold(launched(1)), RunJobFailed(index=3, error="x", at=1.0))


def test_a_run_keeps_the_directive_it_was_launched_under() -> None:
    state = fold(launched(1))
    edited = D1_DIRECTIVES["default"].model_copy(update={"goals": ["changed"], "version": 2})
    assert logic.run_view(state).directive.goals != edited.goals
    assert logic.run_view(state).directive.version == 1


# ---- since the last success ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("history", "last", "after"),
    [
        ([], None, []),
        ([("r3", "failed"), ("r2", "failed"), ("r1", "failed")], None, ["r3", "r2", "r1"]),
        ([("r4", "pending"), ("r3", "running"), ("r2", "success"), ("r1", "failed")], "r2", ["r4", "r3"]),
        ([("r2", "success"), ("r1", "success")], "r2", []),
        ([("r3", "cancelled"), ("r2", "failed"), ("r1", "success")], "r1", ["r3", "r2"]),
    ],
)
def test_since_last_success_on_hand_built_histories(
    history: list[tuple[str, str]], last: str | None, after: list[str]
) -> None:
    runs = [summary(run_id, status, 1000.0 - i) for i, (run_id, status) in enumerate(history)]
    found, since = logic.since_last_success(iter(runs))
    assert (found.run_id if found else None) == last
    assert [r.run_id for r in since] == after


def test_since_last_success_stops_reading_at_the_first_success() -> None:
    read: list[str] = []

    def newest_first() -> Any:
        for run_id, status in [("r3", "failed"), ("r2", "success"), ("r1", "failed")]:
            read.append(run_id)
            yield summary(run_id, status, 0.0)

    logic.since_last_success(newest_first())
    assert read == ["r3", "r2"]


# ---- directives -------------------------------------------------------------------------------------


def test_a_d4_directive_gets_a_new_version_per_change_and_none_for_the_same_content() -> None:
    state = DirectiveState()
    body = {"name": "Ops", "goals": ["a"], "constraints": [], "output_style": "short"}
    for changed, expected in [(body, 1), ({**body, "goals": ["a", "b"]}, 2), ({**body, "goals": ["a", "b"]}, 2)]:
        events = logic.save_directive(state, logic.Save("ops", changed, "me", 1.0, frozenset({"default"})))
        for event in events:
            state = logic.DIRECTIVE_FOLD.evolve(state, StoredEvent("directive#ops", 1, event, "", 0.0))
        assert len(state.versions) == expected
    assert state.versions[0].goals == ["a"]
    with pytest.raises(Conflict, match="built in"):
        logic.save_directive(state, logic.Save("default", body, "me", 1.0, frozenset({"default"})))


def test_job_parameters_are_the_templates_defaults_overridden_and_checked() -> None:
    template = TEMPLATES["log_triage"]
    assert logic.job_parameters(template, {"max_lines": 50}) == {"since_seconds": 3600, "max_lines": 50}
    with pytest.raises(ValidationFailed, match="max_lines"):
        logic.job_parameters(template, {"max_lines": 0})


# ---- prices -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "genai_provider"),
    [("openai", "gpt-4o", "openai"), ("openai", "gpt-4o-mini", "openai"),
     ("anthropic", "claude-3-5-haiku-latest", "anthropic"),
     ("bedrock", "anthropic.claude-3-haiku-20240307-v1:0", "aws")],
)  # fmt: skip
def test_costs_are_genai_prices_figures(provider: str, model: str, genai_provider: str) -> None:
    expected = calc_price(Usage(input_tokens=12_000, output_tokens=3_000), model_ref=model, provider_id=genai_provider)
    cost, priced = Prices().cost(provider, model, 12_000, 3_000)
    assert priced
    assert Decimal(str(cost)) == Decimal(expected.total_price).quantize(Decimal("0.000000001"))
    assert cost > 0


def test_cache_reads_are_cheaper_overrides_win_and_unknown_models_are_marked_unpriced() -> None:
    full, _ = Prices().cost("openai", "gpt-4o", 10_000, 0)
    cached, _ = Prices().cost("openai", "gpt-4o", 10_000, 0, cache_read=8_000)
    assert cached < full
    override = Prices({"gpt-4o": Price(input_per_mtok=1.0, output_per_mtok=2.0)})
    assert override.cost("openai", "gpt-4o", 1_000_000, 500_000) == (2.0, True)
    assert Prices().cost("openai", "no-such-model-xyz", 10, 10) == (0.0, False)
    assert Prices().cost("scripted", "anything", 10, 10) == (0.0, True)
    assert Prices.from_json('{"m": {"input_per_mtok": 3, "output_per_mtok": 4}}').cost("x", "m", 10**6, 0) == (
        3.0,
        True,
    )
    with pytest.raises(ValidationFailed):
        Prices.from_json('{"m": {"dollars": 1}}')


def test_report_windows_are_whole_utc_days() -> None:
    assert window("2026-11-01", "2026-11-30T23:00:00Z", 0) == ("2026-11-01", "2026-11-30")
    assert window(None, None, parse_instant("2026-11-30", "now"), default_days=1) == ("2026-11-29", "2026-11-30")
    assert parse_instant("1795000000", "x") == 1795000000.0
    with pytest.raises(ValidationFailed, match="ISO-8601"):
        parse_instant("yesterday", "since")
    with pytest.raises(ValidationFailed, match="at most"):
        window("2020-01-01", "2026-01-01", 0)


# ---- the jobs' drafts ----------------------------------------------------------------------------------


def test_triage_groups_errors_by_their_shape_and_names_a_likely_cause() -> None:
    logs = {"web": "2026-11-30T10:00:00Z ERROR connect to 10.0.0.5:5432 refused: connection refused\n"
                   "2026-11-30T10:00:01Z ERROR connect to 10.0.0.6:5432 refused: connection refused\n"
                   "2026-11-30T10:00:02Z INFO all good\n2026-11-30T10:00:03Z FATAL out of memory\n"}  # fmt: skip
    draft = analysis.triage_draft(logs)
    assert draft["findings"][0]["severity"] == "critical"
    assert "memory" in draft["findings"][0]["likely_cause"]
    refused = draft["findings"][1]
    assert refused["count"] == 2
    assert "dependency" in refused["likely_cause"]
    assert analysis.triage_draft({"a": "INFO ok\n"})["findings"] == []


def test_gpu_anomalies_and_the_service_maps_mermaid() -> None:
    gpu = {"index": 0, "name": "A100", "utilization_percent": 0, "memory_used_mib": 40000, "memory_total_mib": 40960,
           "temperature_c": 95}  # fmt: skip
    found = analysis.gpu_anomalies("h1", gpu, 85, 5)
    assert len(found) == 3
    inventories = {"h1": [{"id": "1", "name": "api", "image": "api:1", "state": "running",
                           "labels": {"lighthouse.depends_on": "db,cache"}, "ports": [{"PrivatePort": 80}]},
                          {"id": "2", "name": "old", "image": "x", "state": "exited"}]}  # fmt: skip
    service_map = analysis.service_map_draft(inventories, include_stopped=False)
    assert [s["name"] for s in service_map["services"]] == ["api"]
    text = analysis.mermaid(service_map)
    assert "api -->|lighthouse.depends_on label| db" in text
    assert "api -->|lighthouse.depends_on label| cache" in text


def test_a_models_extra_keys_are_not_kept() -> None:
    schema = TEMPLATES["log_triage"].output_schema
    finding = {"container": "c", "severity": "error", "error": "e", "count": 1, "likely_cause": "x"}
    finding["thoughts"] = "secret"
    value = {"summary": "s", "findings": [finding], "musings": "secret"}
    assert "secret" not in json.dumps(analysis.project(value, schema))


# ---- guardrails ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("calling with sk-proj-abcdefghijklmnopqrstuvwx", "api-key"),
        ("aws AKIAIOSFODNN7EXAMPLE", "api-key"),
        ("gh token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "api-key"),
        ("Authorization: Bearer abc.def-ghi_jkl", "bearer"),
        ("session eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", "token"),
        ('{"password": "hunter2!"}', "password"),
        ("db_password=hunter2 user=x", "password"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA\n-----END OPENSSH PRIVATE KEY-----", "private-key"),
        ("from 192.168.10.20 port 22", "ipv4"),
        ("from 2001:db8::8a2e:370:7334", "ipv6"),
    ],
)
def test_each_secret_kind_is_redacted(line: str, kind: str) -> None:
    redacted = redact(line)
    assert f"[REDACTED:{kind}]" in redacted
    for secret in ("abcdefghij", "AKIAIOSFODNN7", "hunter2", "b3BlbnNzaA", "192.168", "8a2e"):
        assert secret not in redacted


def test_redaction_leaves_ordinary_lines_and_json_intact() -> None:
    line = json.dumps({"message": "run 7 took 1.25 s at 10:00:00", "version": "1.2.3", "ip": "10.0.0.1"})
    assert json.loads(redact(line))["message"] == "run 7 took 1.25 s at 10:00:00"
    assert json.loads(redact(line))["ip"] == "[REDACTED:ipv4]"


def test_webhook_signatures_verify_and_refuse_forgery_and_age() -> None:
    body, key = b'{"run_id": "r"}', b"k" * 32
    header = sign(key, body, 1000)
    assert verify(key, body, header, now=lambda: 1010) == 1000
    with pytest.raises(SignatureError, match="does not match"):
        verify(key, body + b" ", header, now=lambda: 1010)
    with pytest.raises(SignatureError, match="old"):
        verify(key, body, header, now=lambda: 5000)
    with pytest.raises(SignatureError, match="not t="):
        verify(key, body, "garbage", now=lambda: 1000)


def test_the_mcp_transport_maps_a_path_to_its_route_as_api_gateway_does() -> None:
    routes = ("/runs", "/runs/{run_id}", "/runs/{run_id}/report", "/runs/since-last-success")
    assert match(routes, "/runs/run-1") == ("/runs/{run_id}", {"run_id": "run-1"})
    assert match(routes, "/runs/since-last-success") == ("/runs/since-last-success", {})
    assert match(routes, "/runs/a%20b/report") == ("/runs/{run_id}/report", {"run_id": "a b"})
    assert match(routes, "/other") is None


def test_schedules_fire_each_occurrence_in_the_look_back_window() -> None:
    now = parse_instant("2026-11-30T10:07:30Z", "now")
    fired = logic.due({"log_triage": "*/5 * * * *", "gpu_report": "0 * * * *"}, now, 600)
    assert fired == [("gpu_report", parse_instant("2026-11-30T10:00:00Z", "x")),
                     ("log_triage", parse_instant("2026-11-30T10:00:00Z", "x")),
                     ("log_triage", parse_instant("2026-11-30T10:05:00Z", "x"))]  # fmt: skip
    assert logic.due({}, now, 600) == []


def test_aggregates_are_partitioned_by_dimension_and_month() -> None:
    from lighthouse.runs.ledger import increments, months
    from lighthouse.runs.models import LedgerEntry

    entry = LedgerEntry.model_validate({**_ENTRY, "at": parse_instant("2026-11-30T10:00:00Z", "x"), "run_id": "r1"})
    keys = set(increments(entry))
    assert ("llm-usage#model#2026-11", "2026-11-30#openai/gpt-4o") in keys
    assert ("llm-usage#run#2026-11", "2026-11-30#r1") in keys
    assert not any(partition.startswith("llm-usage#agent") for partition, _ in keys)  # no agent: no row
    assert months("2025-11-15", "2026-02-01") == ["2025-11", "2025-12", "2026-01", "2026-02"]


_ENTRY = {"call_id": "llm-0123456789", "at": 1.0, "source": "run", "provider": "openai", "model": "gpt-4o",
          "input_tokens": 1, "output_tokens": 1, "cost_usd": 0.0, "priced": True, "latency_ms": 1.0}  # fmt: skip
