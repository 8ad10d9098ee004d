"""Task states of the elicitation state machine: record the wait's task token, or expire at the deadline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from lighthouse.composition import Components, lazy_root
from lighthouse.elicitation.service import ElicitationService
from lighthouse.logs import logger as logger_for
from lighthouse.observability import instrumented

logger = logger_for("lighthouse-elicitation-lifecycle")


class LifecycleStep(BaseModel):
    action: Literal["await", "expire"]
    elicitation_id: str
    task_token: str | None = None


def compose(parts: Components) -> ElicitationService:
    return parts.elicitations


def create_handler(
    elicitations: Callable[[], ElicitationService],
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    @logger.inject_lambda_context
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        step = parse(event=event, model=LifecycleStep)
        service = elicitations()
        if step.action == "await":
            if not step.task_token:
                raise ValueError("the await step needs the execution's task token")
            return service.await_outcome(step.elicitation_id, step.task_token)
        result = service.expire(step.elicitation_id)
        logger.info("deadline reached", extra=result)
        return result

    return handler


handler = instrumented(logger, create_handler(lazy_root(compose)))
