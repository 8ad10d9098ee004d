"""The stage runner: every Task state of a compiled pipeline invokes it (run a stage, merge branches,
record completion or failure). A stage's failure is raised as its category's error type, which the
state machine's Retry and Catch match."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from lighthouse.composition import Components, lazy_root
from lighthouse.logs import logger as logger_for
from lighthouse.observability import instrumented
from lighthouse.pipelines.stages import StageRunner

logger = logger_for("lighthouse-pipeline-stage")


class StageStep(BaseModel):
    action: Literal["run_stage", "merge", "complete", "fail"]
    pipeline: str
    task_id: str
    stage: str | None = None
    previous: dict[str, Any] = Field(default_factory=dict)
    branches: list[dict[str, Any]] = Field(default_factory=list)
    result: list[dict[str, Any]] = Field(default_factory=list, description="the workflow branch's final state")
    failure: dict[str, Any] = Field(default_factory=dict)


def compose(parts: Components) -> StageRunner:
    return parts.stage_runner


def run_step(runner: StageRunner, step: StageStep) -> dict[str, Any]:
    if step.action == "complete":
        last = step.result[0].get("last", {}) if step.result else {}
        return runner.complete(step.task_id, last if isinstance(last, dict) else {})
    if step.action == "fail":
        return runner.fail(step.task_id, step.failure)
    if not step.stage:
        raise ValueError(f"the {step.action} step needs a stage")
    if step.action == "merge":
        return runner.merge(step.task_id, step.stage, step.branches)
    result = runner.run_stage(step.task_id, step.stage, step.previous)
    logger.info("stage finished", extra={"task_id": step.task_id, "stage": step.stage, **result})
    return result


def create_handler(runner: Callable[[], StageRunner]) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    @logger.inject_lambda_context
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return run_step(runner(), parse(event=event, model=StageStep))

    return handler


handler = instrumented(logger, create_handler(lazy_root(compose)))
