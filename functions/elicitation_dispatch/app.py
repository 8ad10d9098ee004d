"""Consumer of the event stream (filtered to elicitation lifecycle events): starts each elicitation's
execution when it is requested and resumes the waiting execution when it is answered or cancelled."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from lighthouse import wiring
from lighthouse.config import get_settings
from lighthouse.consumers import PoisonSink, setting_aside_poison
from lighthouse.events.model import StoredEvent

logger = Logger(service="lighthouse-elicitation-dispatch")
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def dispatch_record(record: DynamoDBRecord) -> None:
    event = StoredEvent.from_stream_record(record.raw_event)
    if event is not None:
        wiring.elicitation_service().dispatch(event)


def _sink() -> PoisonSink:
    return wiring.poison_sink("elicitation-dispatch", get_settings().dispatch_failure_queue_url)


record_handler = setting_aside_poison(dispatch_record, _sink)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(  # type: ignore[return-value]  # a TypedDict of the same shape
        event=event, record_handler=record_handler, processor=processor, context=context
    )
