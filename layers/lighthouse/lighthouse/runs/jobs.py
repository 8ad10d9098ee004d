"""The run state machine's steps (functions/run_job): start, collect, check, analyse, finish.

Each step loads the run's state, decides with `runs.logic`, and records what it did in the run's
stream; a step repeated by a retry records nothing twice. A job's data travels agent -> S3 (a
presigned PUT) -> this runner; the raw data is deleted once the job has its report (container logs
can hold anything), and only the report artifacts stay under the run's prefix.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lighthouse.clock import Clock
from lighthouse.errors import LighthouseError, NotFound
from lighthouse.events import EventStore
from lighthouse.events.command import execute
from lighthouse.events.inline import InlineState
from lighthouse.events.types import Event
from lighthouse.fleet.models import FINAL_STATUSES, CommandState
from lighthouse.fleet.service import FleetService
from lighthouse.fleet.store import command_stream
from lighthouse.pipelines.connections import ConnectionStore
from lighthouse.pipelines.json_engine import JsonProblem, parse_and_repair
from lighthouse.providers import Provider, ProviderError
from lighthouse.runs import analysis, logic
from lighthouse.runs.catalog import template
from lighthouse.runs.inventory import InventoryReader
from lighthouse.runs.ledger import LlmLedger, Who
from lighthouse.runs.models import (
    Directive,
    JobTemplate,
    JobView,
    LlmChoice,
    RunArtifactStored,
    RunCollectionRefused,
    RunFinished,
    RunJobAnalysing,
    RunJobCollecting,
    RunJobFailed,
    RunJobSucceeded,
    RunStarted,
    RunState,
)
from lighthouse.runs.store import ALLOWLIST_STREAM, AllowlistState, RunStates, run_stream

RUNNER = "run-runner"
# Raw collected data: apart from the runs' artifacts, so that a lifecycle rule can expire it.
COLLECTED = "collected/"


class JobFailed(LighthouseError):
    """What makes a job fail with a message for its report (not a bug: bad targets, no data, ...)."""

    code = "JOB_FAILED"


@dataclass(frozen=True)
class Storage:
    s3: Any
    bucket: str
    presign: Callable[[str, str, int], str]  # (method, key, seconds) -> URL

    def put(self, key: str, body: bytes, content_type: str) -> str:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        return hashlib.sha256(body).hexdigest()

    def get(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def delete_prefix(self, prefix: str) -> None:
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})


def job_prefix(run_id: str, job: JobView) -> str:
    return f"runs/{run_id}/{job.index}-{job.job}/"


@dataclass(frozen=True)
class Planned:
    agent_id: str
    request_id: str
    fields: dict[str, Any]


class RunJobRunner:
    def __init__(
        self,
        *,
        events: EventStore,
        runs: RunStates,
        allowlist: InlineState[AllowlistState],
        fleet: Callable[[], FleetService],
        commands: InlineState[CommandState],
        inventory: InventoryReader,
        storage: Storage,
        ledger: LlmLedger,
        connections: ConnectionStore,
        clock: Clock,
        state_machine_arn: str = "",
        collect_ttl_seconds: int = 300,
        on_finished: Callable[[RunState], None] = lambda state: None,
        bedrock_client: Callable[[], Any] = lambda: None,
    ) -> None:
        self._events = events
        self._runs = runs
        self._allowlist = allowlist
        self._fleet = fleet
        self._commands = commands
        self._inventory = inventory
        self._storage = storage
        self._ledger = ledger
        self._connections = connections
        self._clock = clock
        self._machine = state_machine_arn
        self._collect_ttl = collect_ttl_seconds
        self._on_finished = on_finished
        self._bedrock = bedrock_client

    def _state(self, run_id: str) -> RunState:
        state, _ = self._runs.load(run_stream(run_id))
        if not state.exists:
            raise NotFound(f"no run {run_id!r}")
        return state

    def _record(self, run_id: str, event: Event) -> RunState:
        outcome = execute(self._events, run_stream(run_id), logic.RUN_FOLD, logic.job_step, event, inline=self._runs)
        return outcome.state

    # ---- steps ------------------------------------------------------------------------------------

    def start(self, run_id: str) -> dict[str, Any]:
        """Record the run's start; the jobs for the Map state, each `{run_id, index}`."""
        # The execution is named after the run (see RunService.launch), so its ARN is known here.
        execution = f"{self._machine.replace(':stateMachine:', ':execution:')}:{run_id}"
        outcome = execute(
            self._events, run_stream(run_id), logic.RUN_FOLD, logic.start,
            RunStarted(execution=execution, at=self._clock.now()), inline=self._runs,
        )  # fmt: skip
        return {"jobs": [{"run_id": run_id, "index": job.index} for job in outcome.state.jobs]}

    def collect(self, run_id: str, index: int) -> dict[str, Any]:
        """Send the job's collect commands (only to allowed targets); {"waiting": bool}."""
        state = self._state(run_id)
        job = state.jobs[index]
        if job.status != "pending":
            return {"waiting": job.status == "collecting"}
        spec = template(job.job)
        try:
            planned, refused = self._plan_collections(state, job, spec)
        except JobFailed as failed:
            self._record(run_id, RunJobFailed(index=index, error=failed.message, at=self._clock.now()))
            return {"waiting": False}
        now = self._clock.now()
        for target, reason in refused.items():
            self._record(run_id, RunCollectionRefused(index=index, target=target, reason=reason, at=now))
        collections = {target: plan.request_id for target, plan in planned.items()}
        # Recorded before anything is sent: a run cancelled meanwhile sends nothing, and whatever is
        # sent is known to the steps that wait for it and delete what it uploads.
        recorded = self._record(run_id, RunJobCollecting(index=index, collections=collections, refused=refused, at=now))
        if recorded.jobs[index].status != "collecting":
            return {"waiting": False}
        self._dispatch(run_id, index, planned, collections, now)
        if spec.collects != "inventory" and not collections:
            final = self._state(run_id).jobs[index].refused
            reasons = "; ".join(f"{t}: {r}" for t, r in final.items()) or "no targets"
            self._record(run_id, RunJobFailed(index=index, error=f"nothing to collect from: {reasons}", at=now))
            return {"waiting": False}
        return {"waiting": bool(collections)}

    def _dispatch(
        self, run_id: str, index: int, planned: dict[str, Planned], collections: dict[str, str], now: float
    ) -> None:
        """Send each planned command; one the fleet refuses is recorded as refused (and not waited for)."""
        for target, plan in planned.items():
            try:
                self._fleet().dispatch(RUNNER, plan.agent_id, "collect", plan.fields, self._collect_ttl, None,
                                       plan.request_id)  # fmt: skip
            except LighthouseError as error:
                reason = f"could not send the collect command: {error.message}"
                self._record(run_id, RunCollectionRefused(index=index, target=target, reason=reason, at=now))
                del collections[target]

    def _plan_collections(
        self, state: RunState, job: JobView, spec: JobTemplate
    ) -> tuple[dict[str, Planned], dict[str, str]]:
        """The collect command for each allowed target, and why the others get none."""
        if spec.collects == "inventory":
            return {}, {}
        planned: dict[str, Planned] = {}
        refused: dict[str, str] = {}
        since = self._clock.now() - float(job.parameters.get("since_seconds", 3600))
        for target, agent_id, reason in self._placements(job, spec):
            if agent_id is None:
                refused[target] = reason
                continue
            suffix = "log" if spec.collects == "logs" else "json"
            key = f"{COLLECTED}{job_prefix(state.run_id, job)}{target}.{suffix}"
            fields: dict[str, Any] = {
                "kind": spec.collects,
                "upload_url": self._storage.presign("put_object", key, self._collect_ttl + 60),
            }
            if spec.collects == "logs":
                fields |= {"container_id": target, "since": since, "max_lines": int(job.parameters["max_lines"])}
            planned[target] = Planned(agent_id, f"cmd-{secrets.token_hex(12)}", fields)
        return planned, refused

    def _placements(self, job: JobView, spec: JobTemplate) -> list[tuple[str, str | None, str]]:
        """(target, the agent to ask or None, why not). Containers must be allowlisted and enabled."""
        if spec.targets == "agents":
            agents = job.targets or self._inventory.online_agents()
            if not agents:
                raise JobFailed("no agent is online to collect from")
            return [(agent, agent, "") for agent in agents]
        allowlist, _ = self._allowlist.load(ALLOWLIST_STREAM)
        where = self._inventory.container_agents()
        wanted = job.targets or [e.container_id for e in allowlist.entries if e.enabled]
        if not wanted:
            raise JobFailed("no container is allowlisted and enabled (PUT /allowlist)")
        return [(container, *_placement(container, allowlist, where)) for container in wanted]

    def check(self, run_id: str, index: int) -> dict[str, Any]:
        """{"waiting": bool}: still waiting while a collect command is open and the ttl has not passed."""
        state = self._state(run_id)
        job = state.jobs[index]
        # A cancelled run still waits for the uploads in flight, so that finish can delete them.
        in_flight = job.status == "collecting" or (job.status == "cancelled" and job.started_at is not None)
        if not in_flight:
            return {"waiting": False}
        if self._clock.now() > (job.started_at or 0) + self._collect_ttl:
            return {"waiting": False}
        open_commands = [rid for rid in job.collections.values() if _open(self._commands.load(command_stream(rid))[0])]
        return {"waiting": bool(open_commands)}

    def analyse(self, run_id: str, index: int) -> dict[str, Any]:
        state = self._state(run_id)
        job = state.jobs[index]
        if job.status in ("success", "failed", "cancelled"):
            return {"status": job.status}
        self._record(run_id, RunJobAnalysing(index=index, at=self._clock.now()))
        spec = template(job.job)
        try:
            data, draft = self._data_and_draft(state, job, spec)
            result, tokens, cost = self._ask(state, job, spec, data, draft)
        except JobFailed as failed:
            self._record(run_id, RunJobFailed(index=index, error=failed.message, at=self._clock.now()))
            return {"status": "failed"}
        stored = self._store_artifacts(state, job, spec, result)
        execute(self._events, run_stream(run_id), logic.RUN_FOLD, logic.artifacts, stored, inline=self._runs)
        self._delete_collected(state, job)
        done = RunJobSucceeded(index=index, tokens=tokens, cost_usd=cost, llm_calls=1, at=self._clock.now())
        self._record(run_id, done)
        return {"status": "success"}

    def job_failed(self, run_id: str, index: int, error: str) -> dict[str, Any]:
        self._record(run_id, RunJobFailed(index=index, error=error[:2000], at=self._clock.now()))
        return {"status": "failed"}

    def finish(self, run_id: str, error: str | None = None) -> dict[str, Any]:
        state = self._state(run_id)
        status, reason = logic.outcome(state)
        if error:
            status, reason = "failed", error[:2000]
        finished = RunFinished(status=status, error=reason, at=self._clock.now())  # type: ignore[arg-type]
        outcome = execute(self._events, run_stream(run_id), logic.RUN_FOLD, logic.finish, finished, inline=self._runs)
        # Raw data a failed or cancelled job never analysed goes too (the bucket's lifecycle rule
        # expires what an agent uploads after this).
        self._storage.delete_prefix(f"{COLLECTED}runs/{run_id}/")
        # Also after a cancel (recorded by the API): metrics count a run once, and notifications carry
        # the run's own delivery id, which receivers refuse to take twice.
        self._on_finished(outcome.state)
        return {"status": outcome.state.status}

    def _delete_collected(self, state: RunState, job: JobView) -> None:
        for key in self._collected_keys(state, job):
            self._storage.delete(key)

    # ---- analysis ---------------------------------------------------------------------------------

    def _collected_keys(self, state: RunState, job: JobView) -> list[str]:
        suffix = "log" if job.job == "log_triage" else "json"
        return [f"{COLLECTED}{job_prefix(state.run_id, job)}{target}.{suffix}" for target in job.collections]

    def _collected(self, state: RunState, job: JobView) -> tuple[dict[str, bytes], dict[str, str]]:
        """What each target uploaded, and why the others gave nothing."""
        got: dict[str, bytes] = {}
        missing: dict[str, str] = {}
        keys = dict(zip(job.collections, self._collected_keys(state, job), strict=True))
        for target, request_id in job.collections.items():
            command, _ = self._commands.load(command_stream(request_id))
            result = command.result or {}
            if not command.exists:
                missing[target] = "the collect command was never sent"
                continue
            if command.status != "succeeded" or not result.get("ok"):
                missing[target] = str(result.get("error") or f"the collect command {command.status}")
                continue
            body = self._storage.get(keys[target])
            if hashlib.sha256(body).hexdigest() != result.get("sha256"):
                missing[target] = "the uploaded data does not match the sha256 the agent reported"
                continue
            got[target] = body
        return got, missing

    def _data_and_draft(self, state: RunState, job: JobView, spec: JobTemplate) -> tuple[str, dict[str, Any]]:
        if spec.collects == "inventory":
            inventories = self._inventory.containers_by_agent(job.targets or None)
            if not inventories:
                raise JobFailed("no agent has reported an inventory")
            draft = analysis.service_map_draft(inventories, bool(job.parameters.get("include_stopped")))
            return json.dumps(inventories, sort_keys=True), draft
        got, missing = self._collected(state, job)
        if not got:
            reasons = "; ".join(f"{t}: {r}" for t, r in missing.items()) or "no answers"
            raise JobFailed(f"no target delivered data: {reasons}")
        if spec.collects == "logs":
            logs = {target: body.decode("utf-8", "replace") for target, body in got.items()}
            text = "\n".join(f"== {t}\n{logs[t]}" for t in sorted(logs))
            return text, analysis.triage_draft(logs)
        return _gpu_data(job, got, missing)

    def _ask(
        self, state: RunState, job: JobView, spec: JobTemplate, data: str, draft: dict[str, Any]
    ) -> tuple[dict[str, Any], int, float]:
        directive = Directive.model_validate(state.directive)
        choice = LlmChoice.model_validate(state.llm)
        messages = analysis.prompt(spec, directive, data, draft)
        provider = self._provider(choice, draft)
        started = time.perf_counter()
        try:
            completion = provider.generate(messages)
        except ProviderError as error:
            raise JobFailed(f"the model failed: {error.message}") from error
        entry = self._ledger.record_call(
            "run", choice.provider, choice.model, completion.prompt_tokens, completion.completion_tokens,
            (time.perf_counter() - started) * 1000,
            Who(run_id=state.run_id, job=job.job, agent_id=state.launched_by, directive=directive.directive_id),
        )  # fmt: skip
        try:
            parsed = parse_and_repair(completion.text, spec.output_schema)
        except JsonProblem as problem:
            raise JobFailed(f"the model's answer is not a valid {spec.task_key} report: {problem.message}") from problem
        result = analysis.project(parsed.value, spec.output_schema)
        return result, completion.total_tokens, entry.cost_usd

    def _provider(self, choice: LlmChoice, draft: dict[str, Any]) -> Provider:
        if choice.provider == "scripted":
            return Provider("scripted", choice.model, responses=[json.dumps(draft)])
        if not choice.connection:
            raise JobFailed(f"provider {choice.provider} needs a connection (PUT /connections/{{name}})")
        try:
            connection = self._connections.get(choice.connection)
        except NotFound as error:
            raise JobFailed(error.message) from error
        return Provider(
            choice.provider, choice.model, api_key=connection.api_key, base_url=connection.base_url,
            bedrock_client=self._bedrock() if choice.provider == "bedrock" else None,
        )  # fmt: skip

    def _store_artifacts(
        self, state: RunState, job: JobView, spec: JobTemplate, result: dict[str, Any]
    ) -> list[RunArtifactStored]:
        prefix = job_prefix(state.run_id, job)
        first, second = spec.artifacts
        files: list[tuple[str, bytes, str]] = [
            (first, json.dumps(result, indent=2, sort_keys=True).encode(), "application/json")
        ]
        if second.endswith(".mmd"):
            files.append((second, analysis.mermaid(result).encode(), "text/vnd.mermaid"))
        else:
            files.append((second, analysis.markdown(spec, result).encode(), "text/markdown"))
        stored = []
        for name, body, content_type in files:
            digest = self._storage.put(prefix + name, body, content_type)
            stored.append(
                RunArtifactStored(
                    index=job.index, key=prefix + name, name=name, size=len(body), content_type=content_type,
                    sha256=digest,
                )
            )  # fmt: skip
        return stored


def _placement(container: str, allowlist: AllowlistState, where: dict[str, str]) -> tuple[str | None, str]:
    """(the agent to ask, or None, and why not) for one container a job targets."""
    entry = allowlist.entry(container)
    if entry is None:
        return None, "not on the allowlist"
    if not entry.enabled:
        return None, "disabled on the allowlist"
    if container not in where:
        return None, "no agent's inventory shows this container"
    return where[container], ""


def _gpu_data(job: JobView, got: dict[str, bytes], missing: dict[str, str]) -> tuple[str, dict[str, Any]]:
    reports: dict[str, dict[str, Any]] = {target: json.loads(body) for target, body in got.items()}
    for target, reason in missing.items():
        reports[target] = {"gpus": [], "error": reason}
    draft = analysis.gpu_draft(
        reports, float(job.parameters["max_temperature_c"]), float(job.parameters["idle_utilization_percent"])
    )
    return json.dumps(reports, sort_keys=True), draft


def _open(command: CommandState) -> bool:
    """Still waiting for: sent and not ended (a command that was never recorded never will be)."""
    return command.exists and command.status not in FINAL_STATUSES
