"""Task states of the fleet's state machines: a command's deadline (expire it if no result came), and
a rollout's steps (send the next batch; check whether the batch has settled)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from lighthouse.composition import Components, lazy_root
from lighthouse.fleet.rollout_service import RolloutService
from lighthouse.fleet.service import FleetService
from lighthouse.logs import logger as logger_for
from lighthouse.observability import instrumented

logger = logger_for("lighthouse-fleet-command")


class Step(BaseModel):
    action: Literal["expire", "rollout_batch", "rollout_check"]
    request_id: str | None = None
    rollout_id: str | None = None
    batch: int | None = None


@dataclass(frozen=True)
class Root:
    fleet: FleetService
    rollouts: RolloutService


def compose(parts: Components) -> Root:
    return Root(parts.fleet, parts.fleet_rollouts)


def create_handler(root: Callable[[], Root]) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    @logger.inject_lambda_context
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        step = parse(event=event, model=Step)
        if step.action == "expire" and step.request_id:
            view = root().fleet.expire(step.request_id)
            logger.info("command deadline reached", extra={"request_id": view.request_id, "status": view.status})
            return {"request_id": view.request_id, "status": view.status}
        if step.action == "rollout_batch" and step.rollout_id:
            return root().rollouts.send_batch(step.rollout_id)
        if step.action == "rollout_check" and step.rollout_id and step.batch is not None:
            return root().rollouts.check(step.rollout_id, step.batch)
        raise ValueError(f"step {step.action} is missing its request_id, rollout_id or batch")

    return handler


handler = instrumented(logger, create_handler(lazy_root(compose)))
