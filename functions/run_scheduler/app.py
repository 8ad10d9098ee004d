"""Every minute: launch the runs whose job template's cron schedule fired (each once)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lighthouse.composition import Components, lazy_root
from lighthouse.logs import logger as logger_for
from lighthouse.observability import instrumented
from lighthouse.runs.service import RunService

logger = logger_for("lighthouse-run-scheduler")


def compose(parts: Components) -> tuple[RunService, Callable[[], float]]:
    return parts.runs, parts.clock.now


def create_handler(
    root: Callable[[], tuple[RunService, Callable[[], float]]],
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    @logger.inject_lambda_context
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        runs, now = root()
        launched = runs.launch_scheduled(now())
        if launched:
            logger.info("scheduled runs launched", extra={"runs": launched})
        return {"launched": launched}

    return handler


handler = instrumented(logger, create_handler(lazy_root(compose)))
