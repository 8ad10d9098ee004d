"""Invoked by the presence state machine on a schedule: agents silent for 3 intervals go offline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lighthouse.agents.service import AgentService
from lighthouse.composition import Components, lazy_root
from lighthouse.logs import logger as logger_for

logger = logger_for("lighthouse-presence")


def compose(parts: Components) -> AgentService:
    return parts.agents


def create_handler(agents: Callable[[], AgentService]) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    @logger.inject_lambda_context
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        marked = agents().sweep_offline()
        if marked:
            logger.info("agents went offline", extra={"agents": marked})
        return {"marked_offline": marked, "count": len(marked)}

    return handler


handler = create_handler(lazy_root(compose))
