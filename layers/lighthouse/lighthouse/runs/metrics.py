"""Runs' metrics: per-run and per-job durations and outcomes by job template, tokens and cost per day.

Each finished run adds to counters (read model `run-metrics`, one item per job template, applied
once per run) and is emitted as Powertools metrics (EMF on AWS; disabled locally); GET /metrics
renders the counters and the ledger's daily aggregates as Prometheus text, /metrics/json as JSON.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from pydantic import BaseModel

from lighthouse.events import ReadModelStore
from lighthouse.runs.catalog import TEMPLATES
from lighthouse.runs.ledger import LlmLedger
from lighthouse.runs.models import RunState

METRICS_MODEL = "run-metrics"
NAMESPACE = "Lighthouse/Runs"


class JobMetrics(BaseModel):
    job: str
    runs: dict[str, int]  # outcome -> count
    success_rate: float | None
    run_seconds_sum: float
    job_seconds_sum: float
    jobs_timed: int


class DayUsage(BaseModel):
    day: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class RunMetrics(BaseModel):
    jobs: list[JobMetrics]
    llm_by_day: list[DayUsage]


def increments(state: RunState) -> dict[str, dict[str, int]]:
    """What one finished run adds, per job template (durations in milliseconds)."""
    run_ms = round(((state.ended_at or state.launched_at) - state.launched_at) * 1000)
    added: dict[str, dict[str, int]] = {}
    for job in state.jobs:
        counters = added.setdefault(f"job#{job.job}", {"runs": 0, f"status_{state.status}": 0, "run_ms": 0})
        counters["runs"] += 1
        counters[f"status_{state.status}"] += 1
        counters["run_ms"] += run_ms
        if job.started_at is not None and job.ended_at is not None:
            counters["job_ms"] = counters.get("job_ms", 0) + round((job.ended_at - job.started_at) * 1000)
            counters["jobs_timed"] = counters.get("jobs_timed", 0) + 1
    return added


def record(read_models: ReadModelStore, state: RunState, emit: bool = True) -> None:
    """Count a finished run once (a repeated finish adds nothing) and, on AWS (`emit`), emit its
    EMF metrics (locally the counters and GET /metrics are the metrics)."""
    if not read_models.add_counters(METRICS_MODEL, increments(state), f"run#{state.run_id}") or not emit:
        return
    run_seconds = (state.ended_at or state.launched_at) - state.launched_at
    for job in state.jobs:
        with single_metric(
            name="RunSeconds", unit=MetricUnit.Seconds, value=run_seconds, namespace=NAMESPACE
        ) as metric:
            metric.add_dimension(name="job", value=job.job)
            metric.add_dimension(name="status", value=state.status)
        if job.started_at is not None and job.ended_at is not None:
            with single_metric(
                name="JobSeconds", unit=MetricUnit.Seconds, value=job.ended_at - job.started_at, namespace=NAMESPACE
            ) as metric:
                metric.add_dimension(name="job", value=job.job)
        with single_metric(
            name="JobSucceeded", unit=MetricUnit.Count, value=1 if job.status == "success" else 0, namespace=NAMESPACE
        ) as metric:
            metric.add_dimension(name="job", value=job.job)
        with single_metric(name="LlmTokens", unit=MetricUnit.Count, value=job.tokens, namespace=NAMESPACE) as metric:
            metric.add_dimension(name="job", value=job.job)


def collect(read_models: ReadModelStore, ledger: LlmLedger, since: str | None = None) -> RunMetrics:
    jobs = []
    for job in sorted(TEMPLATES):
        counters = read_models.counters(METRICS_MODEL, f"job#{job}")
        outcomes = {k.removeprefix("status_"): v for k, v in counters.items() if k.startswith("status_")}
        ended = sum(outcomes.values())
        jobs.append(
            JobMetrics(
                job=job, runs=outcomes, success_rate=round(outcomes.get("success", 0) / ended, 4) if ended else None,
                run_seconds_sum=counters.get("run_ms", 0) / 1000, job_seconds_sum=counters.get("job_ms", 0) / 1000,
                jobs_timed=counters.get("jobs_timed", 0),
            )
        )  # fmt: skip
    days = ledger.token_stats(since, None).by_day
    by_day = [
        DayUsage(day=d.key, calls=d.calls, input_tokens=d.input_tokens, output_tokens=d.output_tokens,
                 cost_usd=d.cost_usd)
        for d in days
    ]  # fmt: skip
    return RunMetrics(jobs=jobs, llm_by_day=by_day)


def _family(name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], Any]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        shown = ",".join(f'{k}="{v}"' for k, v in labels.items())
        lines.append(f"{name}{{{shown}}} {value}")
    return lines


def _job_families(jobs: list[JobMetrics]) -> list[str]:
    outcomes = [({"job": j.job, "status": s}, n) for j in jobs for s, n in sorted(j.runs.items())]
    rates = [({"job": j.job}, j.success_rate) for j in jobs if j.success_rate is not None]
    return [
        *_family("lighthouse_runs_total", "counter", "Finished runs of each job template, by outcome", outcomes),
        *_family("lighthouse_job_success_ratio", "gauge", "Share of a job template's runs that succeeded", rates),
        *_family("lighthouse_run_duration_seconds_sum", "counter", "Total run duration, launch to end",
                 [({"job": j.job}, j.run_seconds_sum) for j in jobs]),
        *_family("lighthouse_job_duration_seconds_sum", "counter", "Total job duration, collection to report",
                 [({"job": j.job}, j.job_seconds_sum) for j in jobs]),
        *_family("lighthouse_job_duration_seconds_count", "counter", "Jobs timed",
                 [({"job": j.job}, j.jobs_timed) for j in jobs]),
    ]  # fmt: skip


def prometheus(metrics: RunMetrics) -> str:
    days = metrics.llm_by_day
    tokens = [({"day": d.day, "kind": "input"}, d.input_tokens) for d in days]
    tokens += [({"day": d.day, "kind": "output"}, d.output_tokens) for d in days]
    lines = [
        *_job_families(metrics.jobs),
        *_family("lighthouse_llm_tokens_total", "counter", "LLM tokens per UTC day", tokens),
        *_family("lighthouse_llm_cost_usd_total", "counter", "LLM cost per UTC day (USD)",
                 [({"day": d.day}, d.cost_usd) for d in days]),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"
