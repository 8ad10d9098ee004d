"""The runs routes of the HTTP API, declared on the API's `Endpoints` (functions/api/app.py adds them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from chalice.app import Request, Response
from pydantic import BaseModel

from lighthouse.api.endpoints import ADMIN, Endpoints
from lighthouse.api.params import CURSOR, Query, limit
from lighthouse.auth.tokens import Principal
from lighthouse.runs.metrics import RunMetrics, prometheus
from lighthouse.runs.models import (
    Allowlist,
    CostReport,
    Directive,
    DirectiveList,
    DirectiveVersions,
    Inventory,
    JobTemplate,
    JobTemplateList,
    LaunchRun,
    RunAccepted,
    RunPage,
    RunReport,
    RunView,
    SaveDirective,
    SetAllowlist,
    SinceLastSuccess,
    TokenStats,
    UsageByDirective,
)
from lighthouse.runs.service import RunService

R = TypeVar("R")
KiB = 1024
LAUNCHERS = ("admin", "agent", "human")
_INSTANT = r"^[0-9T:.+\-Z ]{1,40}$"
WINDOW = (
    Query("since", "str", "first day (ISO-8601 or Unix seconds; whole UTC days); default: 30 days ago",
          pattern=_INSTANT, max_length=40),
    Query("until", "str", "last day (ISO-8601 or Unix seconds); default: today", pattern=_INSTANT, max_length=40),
)  # fmt: skip
JOB = r"^[a-z][a-z0-9_]{0,63}$"


class SigningKey(BaseModel):
    algorithm: str = "HMAC-SHA256"
    header: str
    key_hex: str


def add_routes(endpoints: Endpoints[R], runs_of: Callable[[R], RunService], signing_key: Callable[[R], bytes]) -> None:
    """Declare every runs route; `runs_of(root)` is the service a request uses."""

    @endpoints.route(
        "/job-templates", "GET", summary="The job templates runs are made of", response_model=JobTemplateList
    )
    def list_templates(api: R, request: Request, principal: Principal) -> JobTemplateList:
        return runs_of(api).templates()

    @endpoints.route("/job-templates/{task_key}", "GET", summary="One job template", response_model=JobTemplate)
    def get_template(api: R, request: Request, principal: Principal, task_key: str) -> JobTemplate:
        return runs_of(api).template(task_key)

    @endpoints.route(
        "/directives", "GET", summary="Directives runs are launched under: D1 built in, D2/D3 configured, D4 custom",
        response_model=DirectiveList,
    )  # fmt: skip
    def list_directives(api: R, request: Request, principal: Principal) -> DirectiveList:
        return runs_of(api).directives()

    @endpoints.route(
        "/directives/{directive_id}", "GET", summary="A directive (its latest version, or ?version=N)",
        response_model=Directive, query=(Query("version", "int", "a past version", None, 1, 100000),),
    )  # fmt: skip
    def get_directive(
        api: R, request: Request, principal: Principal, directive_id: str, version: int | None
    ) -> Directive:
        return runs_of(api).directive(directive_id, version)

    @endpoints.route(
        "/directives/{directive_id}", "PUT", roles=LAUNCHERS,
        summary="Create or update a D4 (custom) directive: each change is a new version; past runs keep theirs",
        body=SaveDirective, max_body=32 * KiB, response_model=Directive, errors=(409,),
    )  # fmt: skip
    def save_directive(
        api: R, request: Request, principal: Principal, directive_id: str, body: SaveDirective
    ) -> Directive:
        return runs_of(api).save_directive(principal, directive_id, body)

    @endpoints.route(
        "/directives/{directive_id}/versions", "GET", summary="Every version of a directive",
        response_model=DirectiveVersions,
    )  # fmt: skip
    def directive_versions(api: R, request: Request, principal: Principal, directive_id: str) -> DirectiveVersions:
        return runs_of(api).directive_versions(directive_id)

    @endpoints.route(
        "/runs", "POST", roles=LAUNCHERS, status=202,
        summary="Launch a run of one job (job, parameters, targets) or several (jobs) under a directive",
        body=LaunchRun, max_body=64 * KiB, response_model=RunAccepted, errors=(404, 409, 503),
    )  # fmt: skip
    def launch_run(api: R, request: Request, principal: Principal, body: LaunchRun) -> RunAccepted:
        return runs_of(api).launch(principal, body)

    @endpoints.route(
        "/runs", "GET", summary="Runs, newest first (?job=&status=)", response_model=RunPage,
        query=(
            limit(50, 200), CURSOR, Query("job", "str", "runs of this job template", pattern=JOB, max_length=64),
            Query("status", "choice", "runs with this status",
                  choices=("pending", "running", "success", "failed", "cancelled")),
        ),
    )  # fmt: skip
    def list_runs(
        api: R, request: Request, principal: Principal, limit: int, next_token: str | None, job: str | None,
        status: str | None,
    ) -> RunPage:  # fmt: skip
        return runs_of(api).runs(limit, next_token, job, status)

    @endpoints.route(
        "/runs/since-last-success", "GET",
        summary="The runs of a job after its last successful run (any status, newest first), from the job's index",
        response_model=SinceLastSuccess, errors=(404,),
        query=(Query("job", "str", "a job template's task_key", pattern=JOB, max_length=64, required=True),),
    )  # fmt: skip
    def since_last_success(api: R, request: Request, principal: Principal, job: str) -> SinceLastSuccess:
        return runs_of(api).since_last_success(job)

    @endpoints.route("/runs/{run_id}", "GET", summary="A run: its jobs and their status", response_model=RunView)
    def get_run(api: R, request: Request, principal: Principal, run_id: str) -> RunView:
        return runs_of(api).run(run_id)

    @endpoints.route(
        "/runs/{run_id}/report", "GET",
        summary="A run's report: jobs, artifacts (with presigned download URLs), tokens, cost, duration",
        response_model=RunReport,
    )  # fmt: skip
    def run_report(api: R, request: Request, principal: Principal, run_id: str) -> RunReport:
        return runs_of(api).report(run_id)

    @endpoints.route(
        "/runs/{run_id}/cancel", "POST", roles=LAUNCHERS, objects="runs the caller launched (admins: any)",
        summary="Cancel a run that has not ended", response_model=RunView, errors=(409,),
    )  # fmt: skip
    def cancel_run(api: R, request: Request, principal: Principal, run_id: str) -> RunView:
        return runs_of(api).cancel(principal, run_id)

    @endpoints.route(
        "/inventory", "GET", roles=LAUNCHERS, response_model=Inventory,
        summary="The containers agents report (their core/inventory snapshots), each marked allowlisted or not",
    )  # fmt: skip
    def inventory(api: R, request: Request, principal: Principal) -> Inventory:
        return runs_of(api).inventory()

    @endpoints.route("/allowlist", "GET", summary="The containers jobs may touch", response_model=Allowlist)
    def get_allowlist(api: R, request: Request, principal: Principal) -> Allowlist:
        return runs_of(api).allowlist()

    @endpoints.route(
        "/allowlist", "PUT", roles=ADMIN, summary="Replace the container allowlist",
        body=SetAllowlist, max_body=256 * KiB, response_model=Allowlist,
    )  # fmt: skip
    def put_allowlist(api: R, request: Request, principal: Principal, body: SetAllowlist) -> Allowlist:
        return runs_of(api).set_allowlist(principal, body)

    @endpoints.route(
        "/llm/token-stats", "GET", summary="LLM tokens by model, by provider and per day (whole UTC days)",
        response_model=TokenStats, query=WINDOW,
    )  # fmt: skip
    def token_stats(api: R, request: Request, principal: Principal, since: str | None, until: str | None) -> TokenStats:
        return runs_of(api).token_stats(since, until)

    @endpoints.route(
        "/llm/cost-report", "GET", summary="LLM cost by model, run, directive and agent over a window",
        response_model=CostReport, query=WINDOW,
    )  # fmt: skip
    def cost_report(api: R, request: Request, principal: Principal, since: str | None, until: str | None) -> CostReport:
        return runs_of(api).cost_report(since, until)

    @endpoints.route(
        "/llm/usage-by-directive", "GET", summary="LLM calls, tokens and cost per directive",
        response_model=UsageByDirective, query=WINDOW,
    )  # fmt: skip
    def usage_by_directive(
        api: R, request: Request, principal: Principal, since: str | None, until: str | None
    ) -> UsageByDirective:
        return runs_of(api).usage_by_directive(since, until)

    @endpoints.route(
        "/metrics", "GET", summary="Runs and LLM metrics as Prometheus text (durations, outcomes, tokens, cost a day)",
        query=WINDOW[:1], content_type="text/plain",
    )  # fmt: skip
    def metrics_text(api: R, request: Request, principal: Principal, since: str | None) -> Response:
        text = prometheus(runs_of(api).metrics(since))
        # Prometheus' text exposition format, version 0.0.4.
        return Response(body=text, status_code=200, headers={"Content-Type": "text/plain; version=0.0.4"})

    @endpoints.route(
        "/metrics/json", "GET", summary="The same metrics as JSON", response_model=RunMetrics, query=WINDOW[:1]
    )
    def metrics_json(api: R, request: Request, principal: Principal, since: str | None) -> RunMetrics:
        return runs_of(api).metrics(since)

    @endpoints.route(
        "/webhooks/signing-key", "GET", roles=ADMIN, response_model=SigningKey,
        summary="The key run notifications are signed with (X-Lighthouse-Signature: t=..,v1=HMAC-SHA256)",
    )  # fmt: skip
    def webhook_key(api: R, request: Request, principal: Principal) -> Any:
        return SigningKey(header="X-Lighthouse-Signature", key_hex=signing_key(api).hex())
