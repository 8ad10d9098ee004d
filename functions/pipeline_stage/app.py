"""The stage runner: every Task state of a compiled pipeline invokes it (run a stage, merge branches,
record completion or failure). A stage's failure is raised as its category's error type, which the
state machine's Retry and Catch match."""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from lighthouse import wiring

logger = Logger(service="lighthouse-pipeline-stage")


class StageStep(BaseModel):
    action: Literal["run_stage", "merge", "complete", "fail"]
    pipeline: str
    task_id: str
    stage: str | None = None
    previous: dict[str, Any] = Field(default_factory=dict)
    branches: list[dict[str, Any]] = Field(default_factory=list)
    result: list[dict[str, Any]] = Field(default_factory=list, description="the workflow branch's final state")
    failure: dict[str, Any] = Field(default_factory=dict)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = parse(event=event, model=StageStep)
    service = wiring.stage_runner()
    if step.action == "complete":
        last = step.result[0].get("last", {}) if step.result else {}
        return service.complete(step.task_id, last if isinstance(last, dict) else {})
    if step.action == "fail":
        return service.fail(step.task_id, step.failure)
    if not step.stage:
        raise ValueError(f"the {step.action} step needs a stage")
    if step.action == "merge":
        return service.merge(step.task_id, step.stage, step.branches)
    result = service.run_stage(step.task_id, step.stage, step.previous)
    logger.info("stage finished", extra={"task_id": step.task_id, "stage": step.stage, **result})
    return result
