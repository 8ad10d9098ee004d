"""Task states of the fleet's state machines: a command's deadline (expire it if no result came)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from lighthouse.composition import Components, lazy_root
from lighthouse.fleet.service import FleetService

logger = Logger(service="lighthouse-fleet-command")


class CommandStep(BaseModel):
    action: Literal["expire"]
    request_id: str


def compose(parts: Components) -> FleetService:
    return parts.fleet


def create_handler(fleet: Callable[[], FleetService]) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    @logger.inject_lambda_context
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        step = parse(event=event, model=CommandStep)
        view = fleet().expire(step.request_id)
        logger.info("command deadline reached", extra={"request_id": view.request_id, "status": view.status})
        return {"request_id": view.request_id, "status": view.status}

    return handler


handler = create_handler(lazy_root(compose))
