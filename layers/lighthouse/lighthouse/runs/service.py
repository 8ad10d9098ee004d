"""Runs as a service: job templates, directives, launching and reading runs, the inventory and its
allowlist, and the LLM ledger's reports. The state machine's steps are in `runs.jobs`."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from typing import Any

from lighthouse.auth.tokens import Principal
from lighthouse.clock import Clock
from lighthouse.errors import Conflict, Forbidden, NotFound, ValidationFailed
from lighthouse.events import EventStore, ReadModelStore
from lighthouse.events.command import execute
from lighthouse.events.inline import InlineState
from lighthouse.paging import cursor_string, encode_cursor
from lighthouse.runs import logic
from lighthouse.runs.catalog import D1_DIRECTIVES, TEMPLATES, template
from lighthouse.runs.inventory import InventoryReader
from lighthouse.runs.ledger import LlmLedger
from lighthouse.runs.metrics import RunMetrics
from lighthouse.runs.metrics import collect as collect_metrics
from lighthouse.runs.models import (
    Allowlist,
    ArtifactView,
    CostReport,
    Directive,
    DirectiveList,
    DirectiveState,
    DirectiveVersions,
    Inventory,
    JobTemplate,
    JobTemplateList,
    LaunchRun,
    LlmChoice,
    RunAccepted,
    RunFinished,
    RunLaunched,
    RunPage,
    RunReport,
    RunState,
    RunView,
    SaveDirective,
    SetAllowlist,
    SinceLastSuccess,
    TokenStats,
    UsageByDirective,
)
from lighthouse.runs.store import (
    ALLOWLIST_FOLD,
    ALLOWLIST_STREAM,
    DIRECTIVES_MODEL,
    AllowlistSet,
    AllowlistState,
    RunStates,
    directive_stream,
    run_stream,
    set_allowlist,
)

LAUNCHERS = ("admin", "agent", "human")
MAX_SINCE_RUNS = 1000
SCHEDULER = "scheduler"


class RunService:
    def __init__(
        self,
        *,
        events: EventStore,
        read_models: ReadModelStore,
        runs: RunStates,
        directives: InlineState[DirectiveState],
        allowlist: InlineState[AllowlistState],
        inventory: InventoryReader,
        ledger: LlmLedger,
        clock: Clock,
        start_execution: Callable[[str], None],  # run id -> (the state machine records its execution)
        presign_get: Callable[[str, int], str],  # (key, seconds) -> URL
        configured_directives: dict[str, Directive] | None = None,
        schedules: dict[str, str] | None = None,
        default_llm: LlmChoice | None = None,
    ) -> None:
        self._events = events
        self._read_models = read_models
        self._runs = runs
        self._directives = directives
        self._allowlist = allowlist
        self._inventory = inventory
        self.ledger = ledger
        self._clock = clock
        self._start_execution = start_execution
        self._presign_get = presign_get
        self._configured = {**D1_DIRECTIVES, **(configured_directives or {})}
        self._schedules = schedules or {}
        self._default_llm = default_llm or LlmChoice()

    # ---- job templates ---------------------------------------------------------------------

    def templates(self) -> JobTemplateList:
        return JobTemplateList(templates=[template(key, self._schedules) for key in sorted(TEMPLATES)])

    def template(self, task_key: str) -> JobTemplate:
        return template(task_key, self._schedules)

    # ---- directives ------------------------------------------------------------------------

    def directives(self) -> DirectiveList:
        custom: list[Directive] = []
        token: str | None = None
        while True:
            documents, token = self._read_models.list(DIRECTIVES_MODEL, limit=200, start_key=token)
            states = (DirectiveState.model_validate(d.body or {}) for d in documents)
            custom.extend(state.versions[-1] for state in states if state.versions)
            if not token:
                break
        ordered = sorted(self._configured.values(), key=lambda d: (d.type, d.directive_id))
        return DirectiveList(directives=[*ordered, *sorted(custom, key=lambda d: d.directive_id)])

    def directive(self, directive_id: str, version: int | None = None) -> Directive:
        configured = self._configured.get(directive_id)
        if configured is not None:
            if version not in (None, configured.version):
                raise NotFound(f"directive {directive_id!r} has only version {configured.version}")
            return configured
        versions = self.directive_versions(directive_id).versions
        if version is None:
            return versions[-1]
        if not 1 <= version <= len(versions):
            raise NotFound(f"directive {directive_id!r} has versions 1 to {len(versions)}")
        return versions[version - 1]

    def directive_versions(self, directive_id: str) -> DirectiveVersions:
        configured = self._configured.get(directive_id)
        if configured is not None:
            return DirectiveVersions(directive_id=directive_id, versions=[configured])
        state, _ = self._directives.load(directive_stream(directive_id))
        if not state.versions:
            raise NotFound(f"no directive {directive_id!r}")
        return DirectiveVersions(directive_id=directive_id, versions=state.versions)

    def save_directive(self, principal: Principal, directive_id: str, body: SaveDirective) -> Directive:
        """A D4 directive's next version (the same content again adds none)."""
        if principal.role not in LAUNCHERS:
            raise Forbidden("experts do not write directives")
        command = logic.Save(
            directive_id, body.model_dump(), principal.agent_id, self._clock.now(), frozenset(self._configured)
        )
        execute(
            self._events, directive_stream(directive_id), logic.DIRECTIVE_FOLD, logic.save_directive, command,
            inline=self._directives,
        )  # fmt: skip
        return self.directive(directive_id)

    # ---- runs ------------------------------------------------------------------------------

    def launch(self, principal: Principal, request: LaunchRun, run_id: str | None = None) -> RunAccepted:
        if principal.role not in LAUNCHERS:
            raise Forbidden("experts do not launch runs")
        jobs = _jobs_of(request)
        directive = self.directive(request.directive)
        run_id = run_id or f"run-{secrets.token_hex(8)}"
        launched = RunLaunched(
            run_id=run_id,
            jobs=[
                {
                    "job": key,
                    "version": template(key).version,
                    "parameters": logic.job_parameters(template(key), parameters),
                    "targets": targets,
                }
                for key, parameters, targets in jobs
            ],
            directive=directive.model_dump(mode="json"),
            llm=request.llm.model_dump() if "llm" in request.model_fields_set else self._default_llm.model_dump(),
            notify_url=request.notify_url,
            schedule=self._schedules.get(jobs[0][0]) if principal.agent_id == SCHEDULER else None,
            by=principal.agent_id,
            at=self._clock.now(),
        )
        execute(self._events, run_stream(run_id), logic.RUN_FOLD, logic.launch, launched, inline=self._runs)
        try:
            self._start_execution(run_id)
        except Exception as error:
            # No execution: the run ends here, failed, rather than pending forever.
            finished = RunFinished(status="failed", error=f"could not start: {error}", at=self._clock.now())
            execute(self._events, run_stream(run_id), logic.RUN_FOLD, logic.finish, finished, inline=self._runs)
            raise
        return RunAccepted(run_id=run_id, status="pending")

    def state(self, run_id: str) -> RunState:
        state, _ = self._runs.load(run_stream(run_id))
        if not state.exists:
            raise NotFound(f"no run {run_id!r}")
        return state

    def run(self, run_id: str) -> RunView:
        return logic.run_view(self.state(run_id))

    def runs(self, limit: int, next_token: str | None, job: str | None, status: str | None) -> RunPage:
        found = []
        last_key: str | None = None
        for run, key in self._runs.newest_first(job, status, page_size=limit, start=cursor_string(next_token)):
            found.append(run)
            last_key = key
            if len(found) == limit:
                break
        more = len(found) == limit and last_key is not None
        return RunPage(runs=found, next_token=encode_cursor(last_key) if more and last_key else None)

    def since_last_success(self, job: str) -> SinceLastSuccess:
        template(job)  # an unknown job is a 404, not an empty answer
        walked = (run for run, _ in self._runs.newest_first(job, page_size=50))
        limited = (run for index, run in enumerate(walked) if index <= MAX_SINCE_RUNS)
        last, after = logic.since_last_success(limited)
        return SinceLastSuccess(job=job, last_success=last, runs=after)

    def report(self, run_id: str) -> RunReport:
        state, _ = self._runs.load(run_stream(run_id))
        if not state.exists:
            raise NotFound(f"no run {run_id!r}")
        artifacts = [ArtifactView(**{**a.model_dump(), "url": self._presign_get(a.key, 900)}) for a in state.artifacts]
        ended = state.ended_at
        return RunReport(
            run_id=run_id,
            status=state.status,
            duration_seconds=round(ended - state.launched_at, 3) if ended else None,
            jobs=state.jobs,
            artifacts=artifacts,
            tokens={"total": sum(job.tokens for job in state.jobs)},
            cost_usd=round(sum(job.cost_usd for job in state.jobs), 9),
            llm_calls=sum(job.llm_calls for job in state.jobs),
        )

    def cancel(self, principal: Principal, run_id: str) -> RunView:
        state, _ = self._runs.load(run_stream(run_id))
        if not state.exists:
            raise NotFound(f"no run {run_id!r}")
        if principal.role != "admin" and principal.agent_id != state.launched_by:
            raise Forbidden("only the caller that launched a run (or an admin) may cancel it")
        finished = RunFinished(status="cancelled", by=principal.agent_id, at=self._clock.now())
        outcome = execute(self._events, run_stream(run_id), logic.RUN_FOLD, logic.finish, finished, inline=self._runs)
        # The execution is not stopped: its steps see the run ended and skip their work, but wait for
        # the collections already sent, so that its finish step deletes what the agents upload.
        return logic.run_view(outcome.state)

    # ---- schedules -------------------------------------------------------------------------

    def launch_scheduled(self, now: float, look_back_seconds: int = 300) -> list[str]:
        """Launch each due run once: its id names the schedule's occurrence, so a tick that overlaps
        the last one (or is retried) launches nothing twice."""
        scheduler = Principal(agent_id=SCHEDULER, role="admin", issued_at=int(now), expires_at=int(now), token_id="")
        launched = []
        for job, occurrence in logic.due(self._schedules, now, look_back_seconds):
            run_id = f"sched-{job.replace('_', '-')}-{int(occurrence)}"
            with contextlib.suppress(Conflict):
                launched.append(self.launch(scheduler, LaunchRun(job=job), run_id=run_id).run_id)
        return launched

    # ---- inventory and allowlist --------------------------------------------------------------

    def allowlist(self) -> Allowlist:
        state, _ = self._allowlist.load(ALLOWLIST_STREAM)
        return Allowlist(entries=state.entries, updated_at=state.updated_at, updated_by=state.updated_by)

    def set_allowlist(self, principal: Principal, request: SetAllowlist) -> Allowlist:
        ids = [entry.container_id for entry in request.entries]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValidationFailed(f"container ids appear twice: {', '.join(duplicates)}")
        command = AllowlistSet(
            entries=[e.model_dump() for e in request.entries], by=principal.agent_id, at=self._clock.now()
        )
        execute(self._events, ALLOWLIST_STREAM, ALLOWLIST_FOLD, set_allowlist, command, inline=self._allowlist)
        return self.allowlist()

    def inventory(self) -> Inventory:
        allowlist = self.allowlist().entries
        containers, agents = self._inventory.listing(allowlist)
        return Inventory(allowlist=allowlist, containers=containers, agents=agents)

    # ---- metrics and the ledger's reports -------------------------------------------------------

    def metrics(self, since: str | None = None) -> RunMetrics:
        return collect_metrics(self._read_models, self.ledger, since)

    def token_stats(self, since: str | None, until: str | None) -> TokenStats:
        return self.ledger.token_stats(since, until)

    def cost_report(self, since: str | None, until: str | None) -> CostReport:
        return self.ledger.cost_report(since, until)

    def usage_by_directive(self, since: str | None, until: str | None) -> UsageByDirective:
        return self.ledger.usage_by_directive(since, until)


def _jobs_of(request: LaunchRun) -> list[tuple[str, dict[str, Any], list[str]]]:
    if request.job and request.jobs:
        raise ValidationFailed("give either `job` (one job) or `jobs` (several), not both")
    if request.job:
        return [(request.job, request.parameters, request.targets)]
    if not request.jobs:
        raise ValidationFailed("a run needs `job` or `jobs`", {"fields": [{"path": "job"}]})
    if request.parameters or request.targets:
        raise ValidationFailed("with `jobs`, give parameters and targets in each job")
    return [(j.job, j.parameters, j.targets) for j in request.jobs]
