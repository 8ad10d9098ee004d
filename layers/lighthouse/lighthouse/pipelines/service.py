"""Tasks and memory as a service: start, read, cancel and resume tasks; read and write memory.

A task is driven by an execution of its pipeline's state machine, whose Task states call the
stage runner (`pipelines.stages`); this service only starts and stops executions and records what
callers ask for. The task's stream is the truth.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable
from typing import Any

from lighthouse.auth.tokens import Principal
from lighthouse.clock import Clock
from lighthouse.errors import Forbidden, NotFound, ValidationFailed
from lighthouse.events import EventStore
from lighthouse.events.command import execute
from lighthouse.events.inline import InlineState
from lighthouse.notify import Notifier, admit, stream_topic
from lighthouse.notify import notifier as process_notifier
from lighthouse.pipelines import logic
from lighthouse.pipelines.memory import MemoryStore, scope_key
from lighthouse.pipelines.models import (
    FINAL,
    MAX_WAIT_SECONDS,
    CreateTask,
    MemoryItemView,
    MemoryPage,
    Remember,
    Remembered,
    TaskCommand,
    TaskCreated,
    TaskStarted,
    TaskState,
    TaskView,
)
from lighthouse.pipelines.plugins import Plugins
from lighthouse.pipelines.registry import PipelineRegistry
from lighthouse.pipelines.store import record, task_stream


def _create(state: TaskState, created: TaskCreated) -> list[TaskCreated]:
    return [created]


class TaskService:
    def __init__(
        self,
        *,
        events: EventStore,
        tasks: InlineState[TaskState],
        registry: PipelineRegistry,
        stepfunctions: Any,
        memory: MemoryStore,
        clock: Clock,
        notifier: Notifier = process_notifier,
        projects_of: Callable[[str], list[str]] = lambda agent_id: [],
    ) -> None:
        """`projects_of(agent_id)` names the projects an agent belongs to (whose memory it may read
        and write, and whose pipelines it may run)."""
        self._events = events
        self._tasks = tasks
        self._registry = registry
        self._sfn = stepfunctions
        self._memory = memory
        self._clock = clock
        self._notifier = notifier
        self._projects_of = projects_of

    def _require_member(self, principal: Principal, project: str, doing: str) -> None:
        if principal.role != "admin" and project not in self._projects_of(principal.agent_id):
            raise Forbidden(f"only members of project {project!r} (or admins) may {doing}", {"project": project})

    # ---- tasks ---------------------------------------------------------------------------------

    def create_task(self, principal: Principal, request: CreateTask) -> TaskView:
        name, version, routing = self._registry.route(request)
        bundle, registration = self._registry.bundle(name, version)
        self._require_member(principal, bundle.pipeline(name).project, f"run pipeline {name!r}")
        created = TaskCreated(
            task_id=uuid.uuid4().hex,
            owner=principal.agent_id,
            pipeline=name,
            version=version,
            project=bundle.pipeline(name).project,
            input=request.input,
            overrides=request.overrides.model_dump(),
            routing=routing,
            at=self._clock.now(),
        )
        stream = task_stream(created.task_id)
        execute(
            self._events, stream, logic.TASK_FOLD, _create, created,
            loaded=(logic.TASK_FOLD.initial(), 0), inline=self._tasks,
        )  # fmt: skip
        Plugins(bundle.plugins).call(
            "before_task", {"task_id": created.task_id, "pipeline": name, "input": request.input}
        )
        self._start(created.task_id, registration.state_machine_arn, created.task_id)
        return self.task(principal, created.task_id)

    def _start(self, task_id: str, machine: str, name: str) -> None:
        execution = self._sfn.start_execution(
            stateMachineArn=machine,
            name=name,
            input=json.dumps({"task_id": task_id, "last": {"node": None, "route": ""}}),
        )["executionArn"]
        record(self._events, self._tasks, task_id, [TaskStarted(execution=execution, at=self._clock.now())])

    def task(self, principal: Principal, task_id: str, wait_seconds: float = 0) -> TaskView:
        """The task; with `wait_seconds` (<= 20), held until it ends or the wait runs out."""
        if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
            raise ValidationFailed(f"wait must be between 0 and {MAX_WAIT_SECONDS} seconds")
        state = self._owned(principal, task_id, "see")
        topic = stream_topic(task_stream(task_id))
        generation = self._notifier.generation(topic)
        deadline, pauses = self._clock.now() + wait_seconds, self._notifier.pacing.pauses()
        while state.status not in FINAL and self._clock.now() < deadline:
            admit()
            generation = self._notifier.wait(
                topic, generation, min(next(pauses), max(0.0, deadline - self._clock.now()))
            )
            state, _ = self._task(task_id)
        return logic.task_view(state)

    def _task(self, task_id: str) -> tuple[TaskState, int]:
        state, version = self._tasks.load(task_stream(task_id))
        if not state.exists:
            raise NotFound(f"no task {task_id!r}")
        return state, version

    def _owned(self, principal: Principal, task_id: str, doing: str) -> TaskState:
        state, _ = self._task(task_id)
        if principal.agent_id != state.owner and principal.role != "admin":
            raise Forbidden(f"only the agent that created a task (or an admin) may {doing} it")
        return state

    def cancel(self, principal: Principal, task_id: str) -> TaskView:
        state = self._owned(principal, task_id, "cancel")
        command = TaskCommand("cancel", principal.agent_id, self._clock.now())
        execute(self._events, task_stream(task_id), logic.TASK_FOLD, logic.decide_task, command, inline=self._tasks)
        for execution in state.executions:
            # An execution that already ended cannot be stopped, which is fine.
            with contextlib.suppress(Exception):
                self._sfn.stop_execution(
                    executionArn=execution, error="TaskCancelled", cause=f"by {principal.agent_id}"
                )
        return self.task(principal, task_id)

    def resume(self, principal: Principal, task_id: str) -> TaskView:
        """A FAILED task starts again at the stage that failed; finished stages are not run again."""
        state = self._owned(principal, task_id, "resume")
        command = TaskCommand("resume", principal.agent_id, self._clock.now())
        execute(self._events, task_stream(task_id), logic.TASK_FOLD, logic.decide_task, command, inline=self._tasks)
        _, registration = self._registry.bundle(state.pipeline, state.version)
        attempt = len(state.executions) + 1
        self._start(task_id, registration.state_machine_arn, f"{task_id}-r{attempt}")
        return self.task(principal, task_id)

    # ---- memory ------------------------------------------------------------------------------------

    def remember(self, principal: Principal, request: Remember) -> Remembered:
        """Global memory reaches every pipeline's prompts: only admins write it. Project memory:
        the project's member agents (not experts or humans) and admins."""
        key = _memory_key(request.store, request.scope, request.project)
        if request.scope == "global" and principal.role != "admin":
            raise Forbidden("only admins may write global memory (it reaches every pipeline's prompts)")
        if request.scope == "project":
            if principal.role not in ("agent", "admin"):
                raise Forbidden("only agents and admins write project memory")
            self._require_member(principal, request.project or "", "write its memory")
        item_id = self._memory.add(key, request.text, request.importance, principal.agent_id)
        return Remembered(item_id=item_id, store_key=key)

    def recall(self, principal: Principal, store: str, scope: str, project: str | None, limit: int) -> MemoryPage:
        key = _memory_key(store, scope, project)
        if scope == "project":
            self._require_member(principal, project or "", "read its memory")
        items = self._memory.recent(key, limit)
        return MemoryPage(
            store_key=key,
            items=[MemoryItemView(item_id=i.item_id, text=i.text, importance=i.importance, at=i.at) for i in items],
        )


def _memory_key(store: str, scope: str, project: str | None) -> str:
    if scope not in ("project", "global"):
        raise ValidationFailed("scope must be project or global", {"fields": [{"path": "scope"}]})
    if scope == "project" and not project:
        raise ValidationFailed("a project store needs `project`", {"fields": [{"path": "project"}]})
    return scope_key(store, scope, "", project or "")
