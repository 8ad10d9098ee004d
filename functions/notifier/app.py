"""Consumer of the event stream (filtered to the events that notify someone): records each
notification in its recipient's feed and posts it to the feed's WebSocket connections."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools.utilities.batch import EventType

from lighthouse.composition import Components, lazy_root
from lighthouse.consumers import LambdaHandler, PoisonSink, batch_handler, stored_events
from lighthouse.logs import logger as logger_for
from lighthouse.observability import instrumented
from lighthouse.push.service import Notifier

logger = logger_for("lighthouse-notifier")


@dataclass(frozen=True)
class Root:
    notifier: Notifier
    poison: PoisonSink


def compose(parts: Components) -> Root:
    return Root(parts.notifier, parts.poison_sink("notifier", parts.settings.dispatch_failure_queue_url))


def create_handler(root: Callable[[], Root]) -> LambdaHandler:
    notify = stored_events(lambda event: root().notifier.handle(event))
    return batch_handler(EventType.DynamoDBStreams, notify, lambda: root().poison, logger)


handler = instrumented(logger, create_handler(lazy_root(compose)))
