"""Consumer of the event stream (filtered to elicitation lifecycle events): starts each elicitation's
execution when it is requested and resumes the waiting execution when it is answered or cancelled."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools.utilities.batch import EventType

from lighthouse.composition import Components, lazy_root
from lighthouse.consumers import LambdaHandler, PoisonSink, batch_handler, stored_events
from lighthouse.elicitation.service import ElicitationService
from lighthouse.logs import logger as logger_for
from lighthouse.observability import instrumented

logger = logger_for("lighthouse-elicitation-dispatch")


@dataclass(frozen=True)
class Root:
    elicitations: ElicitationService
    poison: PoisonSink


def compose(parts: Components) -> Root:
    poison = parts.poison_sink("elicitation-dispatch", parts.settings.dispatch_failure_queue_url)
    return Root(parts.elicitations, poison)


def create_handler(root: Callable[[], Root]) -> LambdaHandler:
    dispatch = stored_events(lambda event: root().elicitations.dispatch(event))
    return batch_handler(EventType.DynamoDBStreams, dispatch, lambda: root().poison, logger)


handler = instrumented(logger, create_handler(lazy_root(compose)))
