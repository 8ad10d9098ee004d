"""The stage runner: the Lambda side of each Task state of a compiled pipeline.

No in-process workflow engine: an execution of the compiled state machine drives the task; each
Task state calls `run_stage` / `merge` / `complete` / `fail` here. The task's event stream is the
truth: a stage that already finished (a resumed task) returns its recorded result without running.
A stage writes two batches to its task's stream: its start (at once, so an attempt counts even if
the invocation dies) and its outcome with the telemetry it produced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lighthouse.clock import Clock
from lighthouse.errors import LighthouseError
from lighthouse.events import EventStore
from lighthouse.events.command import execute
from lighthouse.events.inline import InlineState
from lighthouse.events.types import Event
from lighthouse.lazy import Lazy
from lighthouse.logs import logger as logger_for
from lighthouse.pipelines import logic
from lighthouse.pipelines.connections import ConnectionStore
from lighthouse.pipelines.errors import (
    ConfigStageError,
    ContextStageError,
    JsonStageError,
    LlmStageError,
    RoutingStageError,
    SecurityStageError,
    StageError,
    TaskCancelled,
)
from lighthouse.pipelines.json_engine import JsonProblem, parse_and_repair
from lighthouse.pipelines.manifests import Agent, ConfigBundle, Node
from lighthouse.pipelines.memory import MemoryStore, assemble, scope_key
from lighthouse.pipelines.models import (
    LlmCalled,
    MemoryRetrieved,
    RoutingDecided,
    StageFailed,
    StageFinished,
    StageRecord,
    StageStarted,
    TaskCommand,
    TaskRunning,
    TaskState,
    ToolCalled,
    WorkspaceChanged,
)
from lighthouse.pipelines.plugins import Plugins, Telemetry
from lighthouse.pipelines.prompt import prompt
from lighthouse.pipelines.registry import PipelineRegistry
from lighthouse.pipelines.store import record, task_stream
from lighthouse.pipelines.tools import PLAN_KEYS, PLAN_SCHEMA, ToolRunner, Workspace
from lighthouse.providers import Message, Provider, ProviderError, estimate_tokens
from lighthouse.runs.ledger import LlmLedger, Who

if TYPE_CHECKING:
    from lighthouse.history.service import HistoryService


@dataclass
class StageCall:
    """One stage's run: what it works on, and the telemetry it records on the way."""

    state: TaskState
    bundle: ConfigBundle
    node: Node
    stage_input: Any
    previous: dict[str, Any]
    telemetry: Telemetry
    plugins: Plugins
    record: StageRecord | None
    log: list[Event] = field(default_factory=list)

    def note(self, event: Event) -> None:
        """A telemetry event: to the sinks now, into the task stream with the stage's outcome.

        The payload is prepared by the telemetry settings (redacted unless configured otherwise).
        """
        prepared = type(event).model_validate(self.telemetry.prepare(event.model_dump(mode="json")))
        self.log.append(prepared)
        self.telemetry.emit(self.state.task_id, event.TYPE, prepared.model_dump(mode="json"))


class StageRunner:
    def __init__(
        self,
        *,
        events: EventStore,
        tasks: InlineState[TaskState],
        registry: PipelineRegistry,
        s3: Any,
        memory: MemoryStore,
        workspace_bucket: str,
        clock: Clock,
        connections: ConnectionStore,
        bedrock_client: Callable[[], Any] = lambda: None,
        ledger: LlmLedger | None = None,
        history: Lazy[HistoryService] | None = None,
    ) -> None:
        """`history`, when given, records what tool stages change in the workspace (file history)."""
        self._events = events
        self._history = history
        self._tasks = tasks
        self._registry = registry
        self._s3 = s3
        self._memory = memory
        self._bucket = workspace_bucket
        self._clock = clock
        self._connections = connections
        self._bedrock = bedrock_client
        self._ledger = ledger

    def _task(self, task_id: str) -> tuple[TaskState, int]:
        return self._tasks.load(task_stream(task_id))

    def run_stage(self, task_id: str, stage_id: str, previous: dict[str, Any]) -> dict[str, Any]:
        position = self._task(task_id)
        state = position[0]
        if state.status == "CANCELLED":
            raise TaskCancelled(f"task {task_id} was cancelled")
        done = state.stages.get(stage_id)
        if done is not None and done.status == "finished":
            return {"route": done.route, "reused": True}  # a resumed task: not run again
        bundle, _ = self._registry.bundle(state.pipeline, state.version)
        node = next(n for n in bundle.workflow(bundle.pipeline(state.pipeline).workflow).nodes if n.id == stage_id)
        call = StageCall(
            state, bundle, node, logic.stage_input(state, previous), previous,
            Telemetry(bundle.plugins), Plugins(bundle.plugins), done,
        )  # fmt: skip
        position = self._start(call, position)
        call.plugins.call("before_stage", {"task_id": task_id, "stage": stage_id, "node_type": node.type})
        try:
            output, tokens, cost, repairs = self._run(call)
        except StageError as error:
            self._failed(call, error, position)
            raise
        route = ""
        if node.type == "decision":
            route = str(output.get(node.route_field, "")) if isinstance(output, dict) else ""
            call.note(RoutingDecided(stage=stage_id, route=route))
        finished = StageFinished(stage=stage_id, output=output, route=route, tokens=tokens, cost=cost, repairs=repairs)
        record(self._events, self._tasks, task_id, [*call.log, finished], position)
        shown = {**finished.model_dump(mode="json"), "output": logic.summary(output)}
        call.telemetry.emit(task_id, finished.TYPE, call.telemetry.prepare(shown))
        self._remember_output(call, output)
        call.plugins.call("after_stage", {"task_id": task_id, "stage": stage_id, "output": output})
        return {"route": route, "reused": False}

    def _start(self, call: StageCall, position: tuple[TaskState, int]) -> tuple[TaskState, int]:
        """Record the attempt at once (an attempt counts even if this invocation dies)."""
        started: list[Event] = [TaskRunning(at=self._clock.now())] if call.state.status == "PENDING" else []
        attempt = (call.record.attempts if call.record else 0) + 1
        stage = StageStarted(stage=call.node.id, node_type=call.node.type, attempt=attempt)
        started.append(type(stage).model_validate(call.telemetry.prepare(stage.model_dump(mode="json"))))
        outcome = record(self._events, self._tasks, call.state.task_id, started, position)
        call.telemetry.emit(call.state.task_id, stage.TYPE, stage.model_dump(mode="json"))
        return outcome.state, outcome.version

    def _run(self, call: StageCall) -> tuple[Any, int, float, list[str]]:
        if call.node.type == "tool":
            return self._tool_stage(call), 0, 0.0, []
        return self._agent_stage(call)

    def _failed(self, call: StageCall, error: StageError, position: tuple[TaskState, int]) -> None:
        attempt = (call.record.attempts if call.record else 0) + 1
        signature = {
            "stage": call.node.id,
            "node_type": call.node.type,
            "pipeline": call.state.pipeline,
            "category": error.category,
            "message": error.message,
            "attempt": attempt,
            **({"details": error.details} if error.details else {}),
        }
        call.note(StageFailed(stage=call.node.id, signature=signature))
        record(self._events, self._tasks, call.state.task_id, call.log, position)
        call.plugins.call("on_error", {"task_id": call.state.task_id, "signature": signature})

    def _remember_output(self, call: StageCall, output: Any) -> None:
        """Stage outputs feed the task-scoped stores that some context profile reads."""
        read = {store for profile in call.bundle.memory.profiles for store in profile.stores}
        for store in call.bundle.memory.stores:
            if store.scope == "task" and store.name in read:
                key = scope_key(store.name, "task", call.state.task_id, call.state.project)
                self._memory.add(key, f"{call.node.id}: {logic.summary(output)}", 0.5, call.node.id)

    def merge(self, task_id: str, stage_id: str, branches: list[dict[str, Any]]) -> dict[str, Any]:
        position = self._task(task_id)
        state = position[0]
        if state.status == "CANCELLED":
            raise TaskCancelled(f"task {task_id} was cancelled")
        done = state.stages.get(stage_id)
        if done is not None and done.status == "finished":
            return {"route": "", "reused": True}
        merged: dict[str, Any] = {}
        for index, branch in enumerate(branches):
            source = branch.get("node") if isinstance(branch, dict) else None
            finished = state.stages.get(source or "")
            if not source or finished is None or finished.status != "finished":
                signature = {
                    "stage": stage_id,
                    "node_type": "merge",
                    "pipeline": state.pipeline,
                    "category": "routing",
                    "message": f"branch {index} produced no output",
                }
                record(self._events, self._tasks, task_id, [StageFailed(stage=stage_id, signature=signature)], position)
                raise RoutingStageError(signature["message"])
            merged[source] = finished.output
        merge_events: list[Event] = [
            StageStarted(stage=stage_id, node_type="merge", attempt=1),
            StageFinished(stage=stage_id, output=merged),
        ]
        record(self._events, self._tasks, task_id, merge_events, position)
        return {"route": "", "reused": False}

    def complete(self, task_id: str, last: dict[str, Any]) -> dict[str, Any]:
        command = TaskCommand("complete", "stage-runner", self._clock.now(), last_stage=last.get("node"))
        stream = task_stream(task_id)
        outcome = execute(self._events, stream, logic.TASK_FOLD, logic.decide_task, command, inline=self._tasks)
        if outcome.appended:
            bundle, _ = self._registry.bundle(outcome.state.pipeline, outcome.state.version)
            plugins = Plugins(bundle.plugins)
            plugins.call("after_task", {"task_id": task_id, "output": outcome.state.output})
            plugins.call("on_complete", {"task_id": task_id, "status": "COMPLETED"})
        return {"status": outcome.state.status}

    def fail(self, task_id: str, failure: dict[str, Any]) -> dict[str, Any]:
        command = TaskCommand("fail", "stage-runner", self._clock.now(), failure=failure)
        stream = task_stream(task_id)
        outcome = execute(self._events, stream, logic.TASK_FOLD, logic.decide_task, command, inline=self._tasks)
        if outcome.appended:
            bundle, _ = self._registry.bundle(outcome.state.pipeline, outcome.state.version)
            Plugins(bundle.plugins).call("on_complete", {"task_id": task_id, "status": "FAILED"})
        return {"status": outcome.state.status}

    # ---- agent stages ----------------------------------------------------------------------------

    def _context(self, call: StageCall, agent: Agent) -> list[str]:
        bundle = call.bundle
        profile_name = agent.context_profile or (
            "default" if any(p.name == "default" for p in bundle.memory.profiles) else None
        )
        if not profile_name:
            return []
        profile = next(p for p in bundle.memory.profiles if p.name == profile_name)
        assembled = assemble(self._memory, bundle.memory, profile, call.state.task_id, call.state.project)
        call.note(
            MemoryRetrieved(
                stage=call.node.id,
                profile=profile.name,
                kept=assembled.kept,
                dropped=assembled.dropped,
                tokens=assembled.tokens,
            )
        )
        return [f"- ({item.store}) {item.text}" for item in assembled.items]

    def _agent_stage(self, call: StageCall) -> tuple[Any, int, float, list[str]]:
        agent = call.bundle.agent(call.node.agent or "")
        messages = prompt(call.state, agent, call.node, call.stage_input, call.previous, self._context(call, agent))
        prompt_size = sum(estimate_tokens(m.content) for m in messages)
        if prompt_size > agent.token_budget:
            raise ContextStageError(
                f"the prompt needs about {prompt_size} tokens; {agent.id}'s budget is {agent.token_budget}"
            )
        provider = self._provider(agent)
        calls = call.record.llm_calls if call.record else 0
        tokens, cost, repairs = 0, 0.0, list[str]()
        for attempt in range(agent.json_retries + 1):
            completion, call_cost = self._ask(call, agent, provider, messages, calls)
            calls += 1
            tokens += completion.total_tokens
            cost = round(cost + call_cost, 8)
            if tokens > agent.token_budget:
                raise ContextStageError(f"{agent.id} used {tokens} tokens; its budget is {agent.token_budget}")
            try:
                result = parse_and_repair(completion.text, agent.output_schema)
            except JsonProblem as problem:
                repairs.append(f"attempt {attempt + 1}: {problem.category}: {problem.message}")
                if attempt == agent.json_retries:
                    raise JsonStageError(
                        f"{agent.id}'s answer is not valid after {attempt + 1} attempts: {problem.message}",
                        {"category": problem.category, "errors": problem.errors[:10]},
                    ) from problem
                messages = [*messages, *_re_ask(completion.text, problem)]
                continue
            repairs += result.repairs
            if result.category:
                repairs.append(result.category)
            return result.value, tokens, cost, repairs
        raise JsonStageError("unreachable")  # pragma: no cover - the loop returns or raises

    def _ask(
        self, call: StageCall, agent: Agent, provider: Provider, messages: list[Message], calls: int
    ) -> tuple[Any, float]:
        task_id, stage = call.state.task_id, call.node.id
        call.plugins.call("before_agent_call", {"task_id": task_id, "stage": stage, "agent": agent.id})
        started = time.perf_counter()
        try:
            completion = provider.generate(messages, call_index=calls)
        except ProviderError as error:
            raise (ConfigStageError if error.category == "config" else LlmStageError)(error.message) from error
        price = call.bundle.agents.prices.get(agent.model)
        call_cost = 0.0
        if price:
            call_cost = round(
                completion.prompt_tokens / 1000 * price.prompt_per_1k
                + completion.completion_tokens / 1000 * price.completion_per_1k,
                8,
            )
        call.note(
            LlmCalled(
                stage=stage,
                provider=agent.provider,
                model=agent.model,
                prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens,
                total_tokens=completion.total_tokens,
                cost=call_cost,
                latency_ms=round((time.perf_counter() - started) * 1000, 2),
                prompt=messages[-1].content,
                completion=completion.text,
            )
        )
        if self._ledger is not None:
            self._ledger.record_call(
                "pipeline", agent.provider, agent.model, completion.prompt_tokens, completion.completion_tokens,
                (time.perf_counter() - started) * 1000, Who(task_id=task_id, agent_id=call.state.owner),
            )  # fmt: skip
        call.plugins.call("after_agent_call", {"task_id": task_id, "stage": stage, "tokens": completion.total_tokens})
        return completion, call_cost

    def _provider(self, agent: Agent) -> Provider:
        key, base_url = "", None
        if agent.provider != "scripted":
            if not agent.connection:
                raise ConfigStageError(f"{agent.id}: provider {agent.provider} needs a connection")
            connection = self._connections.get(agent.connection)
            if connection.provider != agent.provider:
                raise ConfigStageError(
                    f"{agent.id}: connection {agent.connection!r} is for {connection.provider}, not {agent.provider}"
                )
            key, base_url = connection.api_key, connection.base_url
        return Provider(
            agent.provider,
            agent.model,
            api_key=key,
            base_url=base_url,
            timeout_seconds=agent.timeout_seconds,
            responses=agent.responses,
            bedrock_client=self._bedrock(),
        )

    # ---- tool stages -----------------------------------------------------------------------------

    def _plan(self, call: StageCall) -> dict[str, Any]:
        node, stage_input = call.node, call.stage_input
        if not node.plan_from_input:
            return {"tool_name": node.tool, "arguments": node.arguments}
        if not isinstance(stage_input, dict) or set(stage_input) - PLAN_KEYS or "tool_name" not in stage_input:
            raise ConfigStageError(f"stage {node.id} expects a ToolPlan {sorted(PLAN_SCHEMA['required'])} as its input")
        producer = call.previous.get("node")
        nodes = call.bundle.workflow(call.bundle.pipeline(call.state.pipeline).workflow).nodes
        producer_node = next((n for n in nodes if n.id == producer), None)
        if producer_node is not None and producer_node.agent:
            allowed = call.bundle.agent(producer_node.agent).tools
            if stage_input["tool_name"] not in allowed:
                raise SecurityStageError(f"agent {producer_node.agent!r} may not call {stage_input['tool_name']!r}")
        return stage_input

    def _tool_stage(self, call: StageCall) -> Any:
        plan = self._plan(call)
        tool = next((t for t in call.bundle.tools.tools if t.id == plan["tool_name"]), None)
        if tool is None:
            raise ConfigStageError(f"tool {plan['tool_name']!r} is not declared in tools.yaml")
        if not isinstance(plan.get("arguments"), dict):
            raise ConfigStageError("a ToolPlan's arguments must be an object")
        overrides = call.state.overrides
        if overrides.get("skip_tools"):
            call.note(ToolCalled(stage=call.node.id, tool=tool.id, outcome="skipped"))
            return {"skipped": True, "tool": tool.id}
        runner = ToolRunner(Workspace(self._s3, self._bucket, call.state.project), call.plugins.veto)
        try:
            outcome = runner.run(
                tool,
                plan["arguments"],
                analysis_only=bool(overrides.get("analysis_only")),
                dry_run=bool(overrides.get("dry_run")),
            )
        except StageError as error:
            failed = ToolCalled(
                stage=call.node.id, tool=tool.id, arguments=plan["arguments"], outcome=error.category,
                message=error.message,
            )  # fmt: skip
            call.note(failed)
            raise
        called = ToolCalled(
            stage=call.node.id, tool=tool.id, arguments=plan["arguments"], outcome="ok", dry_run=outcome.dry_run
        )
        call.note(called)
        if outcome.mutations:
            self._workspace_changed(call, outcome.mutations, outcome.dry_run, runner.workspace)
        call.plugins.call("after_tool_call", {"task_id": call.state.task_id, "stage": call.node.id, "tool": tool.id})
        return {plan["result_field"]: outcome.result} if plan.get("result_field") else outcome.result

    def _workspace_changed(
        self, call: StageCall, changes: list[dict[str, Any]], dry_run: bool, workspace: Workspace
    ) -> None:
        """The change in the task's stream (its record) and, unless it was a dry run, in the project's
        file history. A history that cannot take it is logged, and the stage goes on."""
        call.log.append(WorkspaceChanged(stage=call.node.id, changes=changes, dry_run=dry_run))
        if self._history is None or dry_run:
            return
        state = call.state
        try:
            self._history.get().record_workspace(
                state.project, f"task:{state.task_id}", f"pipeline {state.pipeline} stage {call.node.id}",
                changes, workspace.read_bytes,
            )  # fmt: skip
        except LighthouseError as error:
            _log.warning("workspace change not recorded in history", extra={"task": state.task_id, "error": str(error)})


_log = logger_for("lighthouse-pipeline-stage")


def _re_ask(text: str, problem: JsonProblem) -> list[Message]:
    return [
        Message("assistant", text[: logic.SUMMARY_CHARS]),
        Message(
            "user",
            f"Your answer was rejected ({problem.category}): {problem.message}. "
            + "; ".join(problem.errors[:10])
            + " Answer again with JSON only, matching the schema.",
        ),
    ]
