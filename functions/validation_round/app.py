"""Task states of the validation expert round: ask an expert, record or expire its vote, ask the LLM
expert, conclude."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from lighthouse.composition import Components, lazy_root
from lighthouse.logs import logger as logger_for
from lighthouse.observability import instrumented
from lighthouse.validation.service import ValidationService

logger = logger_for("lighthouse-validation-round")


class RoundStep(BaseModel):
    action: Literal["ask_expert", "record_vote", "expire_vote", "llm_vote", "conclude"]
    request_id: str
    expert: str | None = None
    task_token: str | None = None


def compose(parts: Components) -> ValidationService:
    return parts.validations


def run_step(service: ValidationService, step: RoundStep) -> dict[str, Any]:
    if step.action == "conclude":
        result = service.conclude(step.request_id)
        logger.info("round concluded", extra={"request_id": step.request_id, **result})
        return result
    if not step.expert:
        raise ValueError(f"the {step.action} step needs the expert")
    if step.action == "ask_expert":
        if not step.task_token:
            raise ValueError("the ask_expert step needs the execution's task token")
        return service.ask_expert(step.request_id, step.expert, step.task_token)
    if step.action == "record_vote":
        return service.record_vote(step.request_id, step.expert)
    if step.action == "expire_vote":
        return service.expire_vote(step.request_id, step.expert)
    return service.llm_vote(step.request_id, step.expert)


def create_handler(
    validations: Callable[[], ValidationService],
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    @logger.inject_lambda_context
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return run_step(validations(), parse(event=event, model=RoundStep))

    return handler


handler = instrumented(logger, create_handler(lazy_root(compose)))
