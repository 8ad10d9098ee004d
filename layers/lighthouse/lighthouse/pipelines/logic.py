"""The agent engine: register pipelines (validate, compile, create the state machine), route and
start tasks, and run their stages (the stage runner's side of each Task state).

No in-process workflow engine: an execution of the compiled state machine drives the task; each
Task state calls `run_stage` / `merge` / `complete` / `fail` here. The task's event stream is the
truth: a stage that already finished (a resumed task) returns its recorded result without running.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lighthouse.auth.tokens import Principal
from lighthouse.clock import Clock
from lighthouse.errors import ConcurrencyError, Conflict, Forbidden, NotFound, ValidationFailed
from lighthouse.events import EventStore, NewEvent
from lighthouse.notify import Notifier, await_stream
from lighthouse.notify import notifier as process_notifier
from lighthouse.pipelines import state as ev
from lighthouse.pipelines.compiler import CompileError, compile_pipeline
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
from lighthouse.pipelines.manifests import (
    Agent,
    ConfigBundle,
    ConfigInvalid,
    Node,
    Pipeline,
    load,
)
from lighthouse.pipelines.memory import MemoryStore, assemble, scope_key
from lighthouse.pipelines.models import (
    MAX_WAIT_SECONDS,
    CreateTask,
    MemoryItemView,
    MemoryPage,
    PipelineList,
    PipelineView,
    RegisteredPipeline,
    Registration,
    Remember,
    Remembered,
    StageView,
    TaskView,
)
from lighthouse.pipelines.plugins import Plugins, Telemetry
from lighthouse.pipelines.tools import PLAN_KEYS, PLAN_SCHEMA, ToolRunner, Workspace
from lighthouse.providers import Message, Provider, ProviderError, estimate_tokens

MAX_APPEND_ATTEMPTS = 30
SUMMARY_CHARS = 4000


@dataclass(frozen=True)
class Engine:
    """Where pipelines run: the stage runner function, the role Step Functions assumes, the names."""

    stage_runner_arn: str
    role_arn: str
    machine_prefix: str
    workspace_bucket: str


class PipelineService:
    def __init__(
        self,
        *,
        events: EventStore,
        stepfunctions: Any,
        s3: Any,
        memory: MemoryStore,
        engine: Engine,
        clock: Clock,
        connections: ConnectionStore,
        bedrock_client: Callable[[], Any] = lambda: None,
        notifier: Notifier = process_notifier,
        projects_of: Callable[[str], list[str]] = lambda agent_id: [],
    ) -> None:
        """`projects_of(agent_id)` names the projects an agent belongs to (whose memory it may read
        and write, and whose pipelines it may run)."""
        self._notifier = notifier
        self._projects_of = projects_of
        self._events = events
        self._sfn = stepfunctions
        self._s3 = s3
        self._memory = memory
        self._engine = engine
        self._clock = clock
        self._connections = connections
        self._bedrock = bedrock_client
        self._bundles: dict[tuple[str, int], tuple[ConfigBundle, dict[str, Any]]] = {}

    # ---- registration ------------------------------------------------------------------------

    def register(self, principal: Principal, files: dict[str, str]) -> Registration:
        if principal.role != "admin":
            raise Forbidden("only admins may register pipelines")
        bundle = load(files)
        compiled: list[tuple[Pipeline, dict[str, Any]]] = []
        problems = []
        for pipeline in bundle.pipelines.pipelines:
            try:
                definition = compile_pipeline(
                    pipeline, bundle.workflow(pipeline.workflow), self._engine.stage_runner_arn
                )
            except CompileError as error:
                problems.append({**error.problem, "message": f"pipeline {pipeline.name}: {error}"})
                continue
            compiled.append((pipeline, definition))
        if problems:
            raise ConfigInvalid("the pipeline config is invalid", {"problems": problems})
        registered = []
        now = self._clock.now()
        for pipeline, definition in compiled:
            stream = ev.pipeline_stream(pipeline.name)
            version = self._events.current_version(stream) + 1
            machine = self._sfn.create_state_machine(
                name=f"{self._engine.machine_prefix}-{pipeline.name}-v{version}"[:80],
                definition=json.dumps(definition),
                roleArn=self._engine.role_arn,
                type="STANDARD",
            )["stateMachineArn"]
            data = {
                "name": pipeline.name,
                "workflow": pipeline.workflow,
                "files": files,
                "definition": definition,
                "state_machine_arn": machine,
                "at": now,
                "by": principal.agent_id,
            }
            try:
                self._events.append(stream, [NewEvent(ev.PIPELINE_REGISTERED, data)], expected_version=version - 1)
            except ConcurrencyError as error:
                raise Conflict(f"pipeline {pipeline.name} was registered meanwhile; retry") from error
            registered.append(_registered(pipeline.name, version, data))
        self._append(
            ev.PIPELINE_INDEX,
            ev.PIPELINES_DECLARED,
            {"names": [p.name for p in bundle.pipelines.pipelines], "at": now},
        )
        return Registration(pipelines=registered)

    def pipeline(self, name: str) -> PipelineView:
        state, version = self._events.load_state(ev.pipeline_stream(name), ev.PipelineReducer())
        if not version:
            raise NotFound(f"no pipeline {name!r}")
        data = state.registration
        return PipelineView(
            **_registered(name, version, data).model_dump(), definition=data["definition"], manifests=data["files"]
        )

    def pipelines(self) -> PipelineList:
        return PipelineList(pipelines=[_registered(n, v, d) for n, v, d in self._declared()])

    def _declared(self) -> list[tuple[str, int, dict[str, Any]]]:
        """Every registered pipeline, latest registration first, in its declared order."""
        seen: list[str] = []
        for event in reversed(self._events.load(ev.PIPELINE_INDEX)):
            seen += [name for name in event.data["names"] if name not in seen]
        result = []
        for name in seen:
            state, version = self._events.load_state(ev.pipeline_stream(name), ev.PipelineReducer())
            if version:
                result.append((name, version, state.registration))
        return result

    def _bundle(self, name: str, version: int) -> tuple[ConfigBundle, dict[str, Any]]:
        key = (name, version)
        if key not in self._bundles:
            events = self._events.load(ev.pipeline_stream(name), from_version=version, to_version=version)
            if not events:
                raise NotFound(f"no pipeline {name!r} version {version}")
            self._bundles[key] = (load(events[0].data["files"]), dict(events[0].data))
        return self._bundles[key]

    # ---- tasks ---------------------------------------------------------------------------------

    def _require_member(self, principal: Principal, project: str, doing: str) -> None:
        if principal.role != "admin" and project not in self._projects_of(principal.agent_id):
            raise Forbidden(
                f"only members of project {project!r} (or admins) may {doing}",
                {"project": project},
            )

    def create_task(self, principal: Principal, request: CreateTask) -> TaskView:
        name, version, routing = self._route(request)
        bundle, registration = self._bundle(name, version)
        self._require_member(principal, bundle.pipeline(name).project, f"run pipeline {name!r}")
        task_id = uuid.uuid4().hex
        now = self._clock.now()
        created = {
            "task_id": task_id,
            "owner": principal.agent_id,
            "pipeline": name,
            "version": version,
            "project": bundle.pipeline(name).project,
            "input": request.input,
            "overrides": request.overrides.model_dump(),
            "routing": routing,
            "at": now,
        }
        self._events.append(ev.task_stream(task_id), [NewEvent(ev.TASK_CREATED, created)], expected_version=0)
        Plugins(bundle.plugins).call("before_task", {"task_id": task_id, "pipeline": name, "input": request.input})
        self._start(task_id, registration["state_machine_arn"], task_id)
        return self.task(principal, task_id)

    def _route(self, request: CreateTask) -> tuple[str, int, dict[str, Any]]:
        declared = self._declared()
        if request.pipeline:
            for name, version, _ in declared:
                if name == request.pipeline:
                    return name, version, {"by": "name", "pipeline": name, "reason": "named in the request"}
            raise ValidationFailed(f"no pipeline {request.pipeline!r}", {"fields": [{"path": "pipeline"}]})
        tags = set(request.tags)
        for name, version, _registration in declared:
            bundle, _ = self._bundle(name, version)
            match = bundle.pipeline(name).match
            if match is None:
                continue
            if match.mode is not None and match.mode != request.mode:
                continue
            if not set(match.tags_all) <= tags or (match.tags_any and not set(match.tags_any) & tags):
                continue
            reason = f"first declared pipeline whose rules match mode={request.mode!r} tags={sorted(tags)}"
            return name, version, {"by": "match", "pipeline": name, "reason": reason}
        raise ValidationFailed(
            "no pipeline matches this task: name one, or send a mode and tags a pipeline's rules accept",
            {"mode": request.mode, "tags": sorted(tags)},
        )

    def _start(self, task_id: str, machine: str, name: str) -> None:
        execution = self._sfn.start_execution(
            stateMachineArn=machine,
            name=name,
            input=json.dumps({"task_id": task_id, "last": {"node": None, "route": ""}}),
        )["executionArn"]
        self._append(ev.task_stream(task_id), ev.TASK_STARTED, {"execution": execution, "at": self._clock.now()})

    def task(self, principal: Principal, task_id: str, wait_seconds: float = 0) -> TaskView:
        """The task; with `wait_seconds` (<= 20), held until it ends or the wait runs out."""
        if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
            raise ValidationFailed(f"wait must be between 0 and {MAX_WAIT_SECONDS} seconds")
        state = self._task(task_id)
        if principal.agent_id != state.owner and principal.role != "admin":
            raise Forbidden("only the agent that created a task (or an admin) may see it")
        state = await_stream(
            ev.task_stream(task_id),
            state,
            finished=lambda current: current.status in ev.FINAL,
            reload=lambda: self._task(task_id),
            current_version=self._events.current_version,
            now=self._clock.now,
            wait_seconds=wait_seconds,
            on=self._notifier,
        )
        return _task_view(state)

    def _task(self, task_id: str) -> ev.TaskState:
        return self._task_at(task_id)[0]

    def _task_at(self, task_id: str) -> tuple[ev.TaskState, int]:
        state, version = self._events.load_state(ev.task_stream(task_id), ev.TaskReducer())
        if not state.exists:
            raise NotFound(f"no task {task_id!r}")
        return state, version

    def cancel(self, principal: Principal, task_id: str) -> TaskView:
        state = self._task(task_id)
        if principal.agent_id != state.owner and principal.role != "admin":
            raise Forbidden("only the agent that created a task (or an admin) may cancel it")
        if state.status in ev.FINAL:
            raise Conflict(f"the task is already {state.status}", {"status": state.status})
        self._append(ev.task_stream(task_id), ev.TASK_CANCELLED, {"by": principal.agent_id, "at": self._clock.now()})
        for execution in state.executions:
            # An execution that already ended cannot be stopped, which is fine.
            with contextlib.suppress(Exception):
                self._sfn.stop_execution(
                    executionArn=execution, error="TaskCancelled", cause=f"by {principal.agent_id}"
                )
        return self.task(principal, task_id)

    def resume(self, principal: Principal, task_id: str) -> TaskView:
        state = self._task(task_id)
        if principal.agent_id != state.owner and principal.role != "admin":
            raise Forbidden("only the agent that created a task (or an admin) may resume it")
        if state.status != "FAILED":
            raise Conflict(f"only a FAILED task can be resumed; this one is {state.status}", {"status": state.status})
        _, registration = self._bundle(state.pipeline, state.version)
        attempt = len(state.executions) + 1
        self._append(ev.task_stream(task_id), ev.TASK_RESUMED, {"by": principal.agent_id, "at": self._clock.now()})
        self._start(task_id, registration["state_machine_arn"], f"{task_id}-r{attempt}")
        return self.task(principal, task_id)

    # ---- memory ------------------------------------------------------------------------------------

    def remember(self, principal: Principal, request: Remember) -> Remembered:
        """Global memory reaches every pipeline's prompts: only admins write it. Project memory:
        the project's member agents (not experts or humans) and admins."""
        key = self._memory_key(request.store, request.scope, request.project)
        if request.scope == "global" and principal.role != "admin":
            raise Forbidden("only admins may write global memory (it reaches every pipeline's prompts)")
        if request.scope == "project":
            if principal.role not in ("agent", "admin"):
                raise Forbidden("only agents and admins write project memory")
            self._require_member(principal, request.project or "", "write its memory")
        item_id = self._memory.add(key, request.text, request.importance, principal.agent_id)
        return Remembered(item_id=item_id, store_key=key)

    def recall(self, principal: Principal, store: str, scope: str, project: str | None, limit: int) -> MemoryPage:
        key = self._memory_key(store, scope, project)
        if scope == "project":
            self._require_member(principal, project or "", "read its memory")
        items = self._memory.recent(key, limit)
        return MemoryPage(
            store_key=key,
            items=[MemoryItemView(item_id=i.item_id, text=i.text, importance=i.importance, at=i.at) for i in items],
        )

    @staticmethod
    def _memory_key(store: str, scope: str, project: str | None) -> str:
        if scope not in ("project", "global"):
            raise ValidationFailed("scope must be project or global", {"fields": [{"path": "scope"}]})
        if scope == "project" and not project:
            raise ValidationFailed("a project store needs `project`", {"fields": [{"path": "project"}]})
        return scope_key(store, scope, "", project or "")

    # ---- the stage runner ------------------------------------------------------------------------

    def run_stage(self, task_id: str, stage_id: str, previous: dict[str, Any]) -> dict[str, Any]:
        state, version = self._task_at(task_id)
        if state.status == "CANCELLED":
            raise TaskCancelled(f"task {task_id} was cancelled")
        record = state.stages.get(stage_id)
        if record is not None and record.status == "finished":
            return {"route": record.route, "reused": True}  # a resumed task: not run again
        bundle, _ = self._bundle(state.pipeline, state.version)
        pipeline = bundle.pipeline(state.pipeline)
        node = next(n for n in bundle.workflow(pipeline.workflow).nodes if n.id == stage_id)
        stream = ev.task_stream(task_id)
        telemetry, plugins = Telemetry(bundle.plugins), Plugins(bundle.plugins)
        started = [NewEvent(ev.TASK_RUNNING, {"at": self._clock.now()})] if state.status == "PENDING" else []
        started_data = {"stage": stage_id, "node_type": node.type, "attempt": (record.attempts if record else 0) + 1}
        started.append(NewEvent(ev.STAGE_STARTED, telemetry.prepare(started_data)))
        version = self._flush(stream, started, version)  # at once: an attempt counts even if this invocation dies
        telemetry.emit(task_id, ev.STAGE_STARTED, started_data)
        attempt = started_data["attempt"]
        log: list[NewEvent] = []
        plugins.call("before_stage", {"task_id": task_id, "stage": stage_id, "node_type": node.type})
        stage_input = self._input_of(state, previous)
        tokens, cost, repairs = 0, 0.0, list[str]()
        try:
            if node.type == "tool":
                output = self._tool_stage(state, bundle, node, stage_input, previous, telemetry, plugins, log)
            else:
                output, tokens, cost, repairs = self._agent_stage(
                    state, bundle, node, stage_input, previous, telemetry, plugins, record, log
                )
        except StageError as error:
            signature = {
                "stage": stage_id,
                "node_type": node.type,
                "pipeline": state.pipeline,
                "category": error.category,
                "message": error.message,
                "attempt": attempt,
                **({"details": error.details} if error.details else {}),
            }
            self._record(telemetry, log, task_id, ev.STAGE_FAILED, {"stage": stage_id, "signature": signature})
            self._flush(stream, log, version)
            plugins.call("on_error", {"task_id": task_id, "signature": signature})
            raise
        route = ""
        if node.type == "decision":
            route = str(output.get(node.route_field, "")) if isinstance(output, dict) else ""
            self._record(telemetry, log, task_id, ev.ROUTING_DECIDED, {"stage": stage_id, "route": route})
        finished = {
            "stage": stage_id,
            "output": output,
            "route": route,
            "tokens": tokens,
            "cost": cost,
            "repairs": repairs,
        }
        self._flush(stream, [*log, NewEvent(ev.STAGE_FINISHED, finished)], version)
        telemetry.emit(task_id, ev.STAGE_FINISHED, telemetry.prepare({**finished, "output": _summary(output)}))
        # Stage outputs feed the task-scoped stores that some context profile reads.
        read = {store for profile in bundle.memory.profiles for store in profile.stores}
        for store in bundle.memory.stores:
            if store.scope == "task" and store.name in read:
                key = scope_key(store.name, "task", task_id, state.project)
                self._memory.add(key, f"{stage_id}: {_summary(output)}", 0.5, stage_id)
        plugins.call("after_stage", {"task_id": task_id, "stage": stage_id, "output": output})
        return {"route": route, "reused": False}

    def merge(self, task_id: str, stage_id: str, branches: list[dict[str, Any]]) -> dict[str, Any]:
        state = self._task(task_id)
        if state.status == "CANCELLED":
            raise TaskCancelled(f"task {task_id} was cancelled")
        record = state.stages.get(stage_id)
        if record is not None and record.status == "finished":
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
                self._append(ev.task_stream(task_id), ev.STAGE_FAILED, {"stage": stage_id, "signature": signature})
                raise RoutingStageError(signature["message"])
            merged[source] = finished.output
        merged_stage = {"stage": stage_id, "output": merged, "route": "", "tokens": 0, "cost": 0.0, "repairs": []}
        self._flush(
            ev.task_stream(task_id),
            [
                NewEvent(ev.STAGE_STARTED, {"stage": stage_id, "node_type": "merge", "attempt": 1}),
                NewEvent(ev.STAGE_FINISHED, merged_stage),
            ],
        )
        return {"route": "", "reused": False}

    def complete(self, task_id: str, last: dict[str, Any]) -> dict[str, Any]:
        state = self._task(task_id)
        if state.status in ev.FINAL:
            return {"status": state.status}
        node = last.get("node")
        output = state.stages[node].output if node in state.stages else None
        self._append(
            ev.task_stream(task_id), ev.TASK_COMPLETED, {"output": output, "last_stage": node, "at": self._clock.now()}
        )
        bundle, _ = self._bundle(state.pipeline, state.version)
        plugins = Plugins(bundle.plugins)
        plugins.call("after_task", {"task_id": task_id, "output": output})
        plugins.call("on_complete", {"task_id": task_id, "status": "COMPLETED"})
        return {"status": "COMPLETED"}

    def fail(self, task_id: str, failure: dict[str, Any]) -> dict[str, Any]:
        state = self._task(task_id)
        if state.status in ev.FINAL:
            return {"status": state.status}
        failed = [r.failure for r in state.stages.values() if r.status == "failed" and r.failure]
        cause = failure.get("Cause", "")
        try:
            detail = json.loads(cause) if isinstance(cause, str) and cause.startswith("{") else {"message": cause}
        except ValueError:
            detail = {"message": cause}
        signature = (
            failed[-1] if failed else {"category": "config", "message": str(detail.get("errorMessage") or cause)}
        )
        data = {"failure": {**signature, "error": failure.get("Error")}, "at": self._clock.now()}
        self._append(ev.task_stream(task_id), ev.TASK_FAILED, data)
        bundle, _ = self._bundle(state.pipeline, state.version)
        Plugins(bundle.plugins).call("on_complete", {"task_id": task_id, "status": "FAILED"})
        return {"status": "FAILED"}

    # ---- stages ----------------------------------------------------------------------------------

    def _input_of(self, state: ev.TaskState, previous: dict[str, Any]) -> Any:
        node = previous.get("node") if isinstance(previous, dict) else None
        if node and node in state.stages:
            return state.stages[node].output
        return state.input

    def _agent_stage(
        self,
        state: ev.TaskState,
        bundle: ConfigBundle,
        node: Node,
        stage_input: Any,
        previous: dict[str, Any],
        telemetry: Telemetry,
        plugins: Plugins,
        record: ev.StageRecord | None,
        log: list[NewEvent],
    ) -> tuple[Any, int, float, list[str]]:
        agent = bundle.agent(node.agent or "")
        context_lines: list[str] = []
        profile_name = agent.context_profile or (
            "default" if any(p.name == "default" for p in bundle.memory.profiles) else None
        )
        if profile_name:
            profile = next(p for p in bundle.memory.profiles if p.name == profile_name)
            assembled = assemble(self._memory, bundle.memory, profile, state.task_id, state.project)
            context_lines = [f"- ({item.store}) {item.text}" for item in assembled.items]
            self._record(
                telemetry,
                log,
                state.task_id,
                ev.MEMORY_RETRIEVED,
                {
                    "stage": node.id,
                    "profile": profile.name,
                    "kept": assembled.kept,
                    "dropped": assembled.dropped,
                    "tokens": assembled.tokens,
                },
            )
        messages = _prompt(state, agent, node, stage_input, previous, context_lines)
        prompt_size = sum(estimate_tokens(m.content) for m in messages)
        if prompt_size > agent.token_budget:
            raise ContextStageError(
                f"the prompt needs about {prompt_size} tokens; {agent.id}'s budget is {agent.token_budget}"
            )
        provider = self._provider(agent)
        calls = record.llm_calls if record else 0
        tokens, cost, repairs = 0, 0.0, []
        for attempt in range(agent.json_retries + 1):
            plugins.call("before_agent_call", {"task_id": state.task_id, "stage": node.id, "agent": agent.id})
            started = time.perf_counter()
            try:
                completion = provider.generate(messages, call_index=calls)
            except ProviderError as error:
                raise (ConfigStageError if error.category == "config" else LlmStageError)(error.message) from error
            calls += 1
            latency = round((time.perf_counter() - started) * 1000, 2)
            price = bundle.agents.prices.get(agent.model)
            call_cost = (
                round(
                    completion.prompt_tokens / 1000 * price.prompt_per_1k
                    + completion.completion_tokens / 1000 * price.completion_per_1k,
                    8,
                )
                if price
                else 0.0
            )
            tokens += completion.total_tokens
            cost = round(cost + call_cost, 8)
            self._record(
                telemetry,
                log,
                state.task_id,
                ev.LLM_CALLED,
                {
                    "stage": node.id,
                    "provider": agent.provider,
                    "model": agent.model,
                    "prompt_tokens": completion.prompt_tokens,
                    "completion_tokens": completion.completion_tokens,
                    "total_tokens": completion.total_tokens,
                    "cost": call_cost,
                    "latency_ms": latency,
                    "prompt": messages[-1].content,
                    "completion": completion.text,
                },
            )
            plugins.call(
                "after_agent_call", {"task_id": state.task_id, "stage": node.id, "tokens": completion.total_tokens}
            )
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
                messages = [
                    *messages,
                    Message("assistant", completion.text[:SUMMARY_CHARS]),
                    Message(
                        "user",
                        f"Your answer was rejected ({problem.category}): {problem.message}. "
                        + "; ".join(problem.errors[:10])
                        + " Answer again with JSON only, matching the schema.",
                    ),
                ]
                continue
            repairs += result.repairs
            if result.category:
                repairs.append(result.category)
            return result.value, tokens, cost, repairs
        raise JsonStageError("unreachable")  # pragma: no cover - the loop returns or raises

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

    def _tool_stage(
        self,
        state: ev.TaskState,
        bundle: ConfigBundle,
        node: Node,
        stage_input: Any,
        previous: dict[str, Any],
        telemetry: Telemetry,
        plugins: Plugins,
        log: list[NewEvent],
    ) -> Any:
        if node.plan_from_input:
            if not isinstance(stage_input, dict) or set(stage_input) - PLAN_KEYS or "tool_name" not in stage_input:
                raise ConfigStageError(
                    f"stage {node.id} expects a ToolPlan {sorted(PLAN_SCHEMA['required'])} as its input"
                )
            plan = stage_input
            producer = previous.get("node")
            producer_node = next(
                (n for n in bundle.workflow(bundle.pipeline(state.pipeline).workflow).nodes if n.id == producer), None
            )
            if producer_node is not None and producer_node.agent:
                allowed = bundle.agent(producer_node.agent).tools
                if plan["tool_name"] not in allowed:
                    raise SecurityStageError(f"agent {producer_node.agent!r} may not call {plan['tool_name']!r}")
        else:
            plan = {"tool_name": node.tool, "arguments": node.arguments}
        tool = next((t for t in bundle.tools.tools if t.id == plan["tool_name"]), None)
        if tool is None:
            raise ConfigStageError(f"tool {plan['tool_name']!r} is not declared in tools.yaml")
        if not isinstance(plan.get("arguments"), dict):
            raise ConfigStageError("a ToolPlan's arguments must be an object")
        overrides = state.overrides
        if overrides.get("skip_tools"):
            self._record(
                telemetry, log, state.task_id, ev.TOOL_CALLED, {"stage": node.id, "tool": tool.id, "outcome": "skipped"}
            )
            return {"skipped": True, "tool": tool.id}
        runner = ToolRunner(Workspace(self._s3, self._engine.workspace_bucket, state.project), plugins.veto)
        called = {"stage": node.id, "tool": tool.id, "arguments": plan["arguments"]}
        try:
            outcome = runner.run(
                tool,
                plan["arguments"],
                analysis_only=bool(overrides.get("analysis_only")),
                dry_run=bool(overrides.get("dry_run")),
            )
        except StageError as error:
            failed = {**called, "outcome": error.category, "message": error.message}
            self._record(telemetry, log, state.task_id, ev.TOOL_CALLED, failed)
            raise
        self._record(
            telemetry, log, state.task_id, ev.TOOL_CALLED, {**called, "outcome": "ok", "dry_run": outcome.dry_run}
        )
        if outcome.mutations:
            changes = {"stage": node.id, "changes": outcome.mutations, "dry_run": outcome.dry_run}
            log.append(NewEvent(ev.WORKSPACE_CHANGED, changes))
        plugins.call("after_tool_call", {"task_id": state.task_id, "stage": node.id, "tool": tool.id})
        return {plan["result_field"]: outcome.result} if plan.get("result_field") else outcome.result

    # ---- appends -------------------------------------------------------------------------------

    def _record(
        self, telemetry: Telemetry, log: list[NewEvent], task_id: str, event_type: str, data: dict[str, Any]
    ) -> None:
        """A telemetry event: to the sinks now, into the task stream (redacted unless configured) with the
        stage's outcome."""
        prepared = telemetry.prepare(data)
        log.append(NewEvent(event_type, prepared))
        telemetry.emit(task_id, event_type, prepared)

    def _flush(self, stream: str, events: list[NewEvent], expected: int | None = None) -> int:
        """Append events as one batch at the end of a stream that parallel branches also write to.

        `expected` is the version the caller last saw (saves a read when nobody wrote since); the
        stream's version after the append is returned.
        """
        version = expected
        for _attempt in range(MAX_APPEND_ATTEMPTS):
            if version is None:
                version = self._events.current_version(stream)
            try:
                self._events.append(stream, events, expected_version=version)
                return version + len(events)
            except ConcurrencyError:
                version = None
        raise ConcurrencyError(f"{stream} is too contended")

    def _append(self, stream: str, event_type: str, data: dict[str, Any]) -> None:
        self._flush(stream, [NewEvent(event_type, data)])


def _registered(name: str, version: int, data: dict[str, Any]) -> RegisteredPipeline:
    return RegisteredPipeline(
        name=name,
        version=version,
        workflow=data["workflow"],
        state_machine_arn=data["state_machine_arn"],
        registered_at=data["at"],
        registered_by=data["by"],
    )


def _summary(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:SUMMARY_CHARS]


def _prompt(
    state: ev.TaskState, agent: Agent, node: Node, stage_input: Any, previous: dict[str, Any], context: list[str]
) -> list[Message]:
    system = (
        f"{agent.system}\n\nYou are stage '{node.id}' of the pipeline '{state.pipeline}'. {node.instructions}".strip()
    )
    parts = [f"Task: {_summary(state.input)}"]
    if context:
        parts.append("Context:\n" + "\n".join(context))
    source = previous.get("node") if isinstance(previous, dict) else None
    parts.append(f"Input ({'from ' + source if source else 'the task input'}):\n{_summary(stage_input)}")
    if isinstance(previous, dict) and previous.get("error"):
        parts.append(f"The previous stage failed: {_summary(previous['error'])}")
    parts.append(
        "Answer with one JSON value and nothing else, valid against this JSON Schema:\n"
        + json.dumps(agent.output_schema, sort_keys=True)
    )
    return [Message("system", system), Message("user", "\n\n".join(parts))]


def _task_view(state: ev.TaskState) -> TaskView:
    return TaskView(
        task_id=state.task_id,
        pipeline=state.pipeline,
        version=state.version,
        status=state.status,  # type: ignore[arg-type]
        input=state.input,
        overrides=state.overrides,
        routing=state.routing,
        stages={k: StageView(**vars(v)) for k, v in state.stages.items()},
        prompt_tokens=state.prompt_tokens,
        completion_tokens=state.completion_tokens,
        total_tokens=state.prompt_tokens + state.completion_tokens,
        cost=state.cost,
        mutations=state.mutations,
        output=state.output,
        failure=state.failure,
        executions=state.executions,
        created_at=state.created_at,
        finished_at=state.finished_at,
    )
