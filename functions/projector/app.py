"""DynamoDB Streams consumer of the events table: builds every read model, batch by batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools.utilities.batch import EventType

from lighthouse.composition import Components, lazy_root
from lighthouse.consumers import LambdaHandler, PoisonSink, batch_handler, stored_events
from lighthouse.events import Projector
from lighthouse.logs import logger as logger_for

logger = logger_for("lighthouse-projector")


@dataclass(frozen=True)
class Root:
    projector: Projector
    poison: PoisonSink


def compose(parts: Components) -> Root:
    return Root(parts.projector, parts.poison_sink("projector", parts.settings.projector_failure_queue_url))


def create_handler(root: Callable[[], Root]) -> LambdaHandler:
    project = stored_events(lambda event: root().projector.project([event]))
    return batch_handler(EventType.DynamoDBStreams, project, lambda: root().poison, logger)


handler = create_handler(lazy_root(compose))
