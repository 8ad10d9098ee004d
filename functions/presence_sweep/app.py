"""Invoked by the presence state machine on a schedule: agents silent for 3 intervals go offline."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from lighthouse import wiring

logger = Logger(service="lighthouse-presence")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    marked = wiring.agent_service().sweep_offline()
    if marked:
        logger.info("agents went offline", extra={"agents": marked})
    return {"marked_offline": marked, "count": len(marked)}
