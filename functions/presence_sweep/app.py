"""Invoked by the presence state machine on a schedule: agents silent for 3 intervals go offline;
and the fleet's offline count as a metric (the FleetOfflineAlarm's)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lighthouse.agents.service import AgentService
from lighthouse.composition import Components, lazy_root
from lighthouse.events import ReadModelStore
from lighthouse.fleet import logic as fleet_logic
from lighthouse.fleet.models import FLEET_MODEL
from lighthouse.logs import logger as logger_for
from lighthouse.observability import instrumented, metrics_for

logger = logger_for("lighthouse-presence")
metrics = metrics_for(logger)
MAX_FLEET = 10_000


@dataclass(frozen=True)
class Root:
    agents: AgentService
    read_models: ReadModelStore


def compose(parts: Components) -> Root:
    return Root(parts.agents, parts.read_models)


def fleet_offline(read_models: ReadModelStore) -> int:
    documents, _ = read_models.list(FLEET_MODEL, limit=MAX_FLEET)
    states = (fleet_logic.FLEET_FOLD.from_snapshot(document.body or {}) for document in documents)
    return sum(1 for state in states if fleet_logic.agent_view(state).presence == "offline")


def create_handler(root: Callable[[], Root]) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        marked = root().agents.sweep_offline()
        if marked:
            logger.info("agents went offline", extra={"agents": marked})
        offline = fleet_offline(root().read_models)
        metrics.add_metric(name="FleetAgentsOffline", unit=MetricUnit.Count, value=offline)
        return {"marked_offline": marked, "count": len(marked), "fleet_offline": offline}

    return handler


handler = instrumented(logger, create_handler(lazy_root(compose)))
