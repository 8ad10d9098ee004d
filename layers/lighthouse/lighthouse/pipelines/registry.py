"""Registered pipelines: validate a config directory, compile each workflow to a state machine,
record each as a new version, and route tasks to the pipeline whose rules match."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lighthouse.auth.tokens import Principal
from lighthouse.clock import Clock
from lighthouse.errors import Conflict, Forbidden, NotFound, ValidationFailed
from lighthouse.events import EventStore
from lighthouse.events.command import append_at_end, execute
from lighthouse.pipelines import logic
from lighthouse.pipelines.bundle import load
from lighthouse.pipelines.compiler import CompileError, compile_pipeline
from lighthouse.pipelines.manifests import ConfigBundle, ConfigInvalid, Pipeline
from lighthouse.pipelines.models import (
    CreateTask,
    PipelineList,
    PipelineRegistered,
    PipelinesDeclared,
    PipelineState,
    PipelineView,
    Registration,
)
from lighthouse.pipelines.store import PIPELINE_INDEX, pipeline_stream


@dataclass(frozen=True)
class Engine:
    """Where pipelines run: the stage runner function, the role Step Functions assumes, the names."""

    stage_runner_arn: str
    role_arn: str
    machine_prefix: str
    workspace_bucket: str


def _register_version(state: PipelineState, command: tuple[int, PipelineRegistered]) -> list[PipelineRegistered]:
    """Record version `command[0]`, whose state machine is already made: only if it is still next."""
    version, registered = command
    if state.version != version - 1:
        raise Conflict(f"pipeline {registered.name} was registered meanwhile; retry")
    return [registered]


class PipelineRegistry:
    def __init__(self, *, events: EventStore, stepfunctions: Any, engine: Engine, clock: Clock) -> None:
        self._events = events
        self._sfn = stepfunctions
        self._engine = engine
        self._clock = clock
        self._bundles: dict[tuple[str, int], tuple[ConfigBundle, PipelineRegistered]] = {}

    def register(self, principal: Principal, files: dict[str, str]) -> Registration:
        if principal.role != "admin":
            raise Forbidden("only admins may register pipelines")
        bundle = load(files)
        compiled, problems = [], []
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
        now = self._clock.now()
        registered = [
            self._register_one(pipeline, definition, files, principal, now) for pipeline, definition in compiled
        ]
        declared = PipelinesDeclared(names=[p.name for p in bundle.pipelines.pipelines], at=now)
        append_at_end(self._events, PIPELINE_INDEX, [declared])
        return Registration(pipelines=registered)

    def _register_one(
        self, pipeline: Pipeline, definition: dict[str, Any], files: dict[str, str], by: Principal, now: float
    ) -> Any:
        stream = pipeline_stream(pipeline.name)
        version = self._events.current_version(stream) + 1
        # The state machine is named after the version it will hold: a retried registration that
        # lost its race finds its name taken and fails, rather than leaving a stray machine.
        machine = self._sfn.create_state_machine(
            name=f"{self._engine.machine_prefix}-{pipeline.name}-v{version}"[:80],
            definition=json.dumps(definition),
            roleArn=self._engine.role_arn,
            type="STANDARD",
        )["stateMachineArn"]
        event = PipelineRegistered(
            name=pipeline.name,
            workflow=pipeline.workflow,
            files=files,
            definition=definition,
            state_machine_arn=machine,
            at=now,
            by=by.agent_id,
        )
        outcome = execute(self._events, stream, logic.PIPELINE_FOLD, _register_version, (version, event))
        return logic.registered_view(outcome.version, event)

    def pipeline(self, name: str) -> PipelineView:
        state, version = self._events.load_state(pipeline_stream(name), logic.PIPELINE_FOLD)
        if state.registration is None:
            raise NotFound(f"no pipeline {name!r}")
        event = state.registration
        return PipelineView(
            **logic.registered_view(version, event).model_dump(), definition=event.definition, manifests=event.files
        )

    def pipelines(self) -> PipelineList:
        return PipelineList(pipelines=[logic.registered_view(v, event) for _, v, event in self.declared()])

    def declared(self) -> list[tuple[str, int, PipelineRegistered]]:
        """Every registered pipeline, latest registration first, in its declared order."""
        seen: list[str] = []
        for stored in reversed(self._events.load(PIPELINE_INDEX)):
            if isinstance(stored.event, PipelinesDeclared):
                seen += [name for name in stored.event.names if name not in seen]
        result = []
        for name in seen:
            state, version = self._events.load_state(pipeline_stream(name), logic.PIPELINE_FOLD)
            if state.registration is not None:
                result.append((name, version, state.registration))
        return result

    def bundle(self, name: str, version: int) -> tuple[ConfigBundle, PipelineRegistered]:
        """A registered version's config, parsed once per container."""
        key = (name, version)
        if key not in self._bundles:
            events = self._events.load(pipeline_stream(name), from_version=version, to_version=version)
            if not events or not isinstance(events[0].event, PipelineRegistered):
                raise NotFound(f"no pipeline {name!r} version {version}")
            self._bundles[key] = (load(events[0].event.files), events[0].event)
        return self._bundles[key]

    def route(self, request: CreateTask) -> tuple[str, int, dict[str, Any]]:
        """The named pipeline, or the first declared one whose match rules accept mode and tags."""
        declared = self.declared()
        if request.pipeline:
            for name, version, _ in declared:
                if name == request.pipeline:
                    return name, version, {"by": "name", "pipeline": name, "reason": "named in the request"}
            raise ValidationFailed(f"no pipeline {request.pipeline!r}", {"fields": [{"path": "pipeline"}]})
        tags = set(request.tags)
        for name, version, _registration in declared:
            if _matches(self.bundle(name, version)[0].pipeline(name), request.mode, tags):
                reason = f"first declared pipeline whose rules match mode={request.mode!r} tags={sorted(tags)}"
                return name, version, {"by": "match", "pipeline": name, "reason": reason}
        raise ValidationFailed(
            "no pipeline matches this task: name one, or send a mode and tags a pipeline's rules accept",
            {"mode": request.mode, "tags": sorted(tags)},
        )


def _matches(pipeline: Pipeline, mode: str | None, tags: set[str]) -> bool:
    match = pipeline.match
    if match is None or (match.mode is not None and match.mode != mode):
        return False
    return set(match.tags_all) <= tags and (not match.tags_any or bool(set(match.tags_any) & tags))
