"""Consumer of the event stream (filtered to VALIDATION_REQUESTED): starts the expert round of each
request the gate escalated to experts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools.utilities.batch import EventType

from lighthouse.composition import Components, lazy_root
from lighthouse.consumers import LambdaHandler, PoisonSink, batch_handler, stored_events
from lighthouse.logs import logger as logger_for
from lighthouse.observability import instrumented
from lighthouse.validation.service import ValidationService

logger = logger_for("lighthouse-validation-dispatch")


@dataclass(frozen=True)
class Root:
    validations: ValidationService
    poison: PoisonSink


def compose(parts: Components) -> Root:
    return Root(parts.validations, parts.poison_sink("validation-dispatch", parts.settings.dispatch_failure_queue_url))


def create_handler(root: Callable[[], Root]) -> LambdaHandler:
    dispatch = stored_events(lambda event: root().validations.dispatch(event))
    return batch_handler(EventType.DynamoDBStreams, dispatch, lambda: root().poison, logger)


handler = instrumented(logger, create_handler(lazy_root(compose)))
