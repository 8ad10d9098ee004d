"""Task states of the runs state machine: start, and each job's collect, check, analyse (or
job_failed), then finish."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from lighthouse.composition import Components, lazy_root
from lighthouse.logs import logger as logger_for
from lighthouse.observability import instrumented
from lighthouse.runs.jobs import RunJobRunner

logger = logger_for("lighthouse-run-job")


class Step(BaseModel):
    action: Literal["start", "collect", "check", "analyse", "job_failed", "finish"]
    run_id: str
    index: int | None = None
    error: dict[str, Any] | None = None  # a Catch's {"Error", "Cause"}


def compose(parts: Components) -> RunJobRunner:
    return parts.run_jobs


def _reason(error: dict[str, Any] | None) -> str | None:
    """A caught error as the run reports it: the function's errorMessage if the Cause carries one."""
    if not error:
        return None
    cause = str(error.get("Cause") or "")
    try:
        message = json.loads(cause).get("errorMessage")
    except (ValueError, AttributeError):
        message = None
    return f"{error.get('Error', 'Error')}: {message or cause or 'no cause given'}"


def create_handler(root: Callable[[], RunJobRunner]) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    @logger.inject_lambda_context
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        step = parse(event=event, model=Step)
        runner = root()
        if step.action == "start":
            return runner.start(step.run_id)
        if step.action == "finish":
            return runner.finish(step.run_id, _reason(step.error))
        if step.index is None:
            raise ValueError(f"step {step.action} needs the job's index")
        if step.action == "collect":
            return runner.collect(step.run_id, step.index)
        if step.action == "check":
            return runner.check(step.run_id, step.index)
        if step.action == "analyse":
            return runner.analyse(step.run_id, step.index)
        return runner.job_failed(step.run_id, step.index, _reason(step.error) or "the job failed")

    return handler


handler = instrumented(logger, create_handler(lazy_root(compose)))
