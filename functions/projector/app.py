"""DynamoDB Streams consumer of the events table: builds every read model, batch by batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools.utilities.batch import EventType

from lighthouse.composition import Components, lazy_root
from lighthouse.consumers import LambdaHandler, PoisonSink, batch_handler, stored_events
from lighthouse.events import Projector
from lighthouse.events.model import StoredEvent
from lighthouse.logs import logger as logger_for
from lighthouse.observability import instrumented, metrics_for, record_event_metrics

logger = logger_for("lighthouse-projector")
metrics = metrics_for(logger)


@dataclass(frozen=True)
class Root:
    projector: Projector
    poison: PoisonSink


def compose(parts: Components) -> Root:
    return Root(parts.projector, parts.poison_sink("projector", parts.settings.projector_failure_queue_url))


def create_handler(root: Callable[[], Root]) -> LambdaHandler:
    def project(event: StoredEvent) -> None:
        root().projector.project([event])
        record_event_metrics(metrics, event)  # elicitation expiry rate and gate latency (the alarms')

    return batch_handler(EventType.DynamoDBStreams, stored_events(project), lambda: root().poison, logger)


handler = instrumented(logger, create_handler(lazy_root(compose)))
