"""Consumer of the event stream (filtered to elicitation lifecycle events): starts each elicitation's
execution when it is requested and resumes the waiting execution when it is answered or cancelled."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from lighthouse.composition import Components, lazy_root
from lighthouse.consumers import PoisonSink, setting_aside_poison
from lighthouse.elicitation.service import ElicitationService
from lighthouse.events.model import StoredEvent

logger = Logger(service="lighthouse-elicitation-dispatch")


@dataclass(frozen=True)
class Root:
    elicitations: ElicitationService
    poison: PoisonSink


def compose(parts: Components) -> Root:
    poison = parts.poison_sink("elicitation-dispatch", parts.settings.dispatch_failure_queue_url)
    return Root(parts.elicitations, poison)


def create_handler(root: Callable[[], Root]) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)

    def dispatch_record(record: DynamoDBRecord) -> None:
        event = StoredEvent.from_stream_record(record.raw_event)
        if event is not None:
            root().elicitations.dispatch(event)

    record_handler = setting_aside_poison(dispatch_record, lambda: root().poison)

    @logger.inject_lambda_context
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return process_partial_response(  # type: ignore[return-value]  # a TypedDict of the same shape
            event=event, record_handler=record_handler, processor=processor, context=context
        )

    return handler


handler = create_handler(lazy_root(compose))
