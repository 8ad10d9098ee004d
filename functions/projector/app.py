"""DynamoDB Streams consumer of the events table: builds every read model, batch by batch."""

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
from lighthouse.events import Projector
from lighthouse.events.model import StoredEvent

logger = Logger(service="lighthouse-projector")


@dataclass(frozen=True)
class Root:
    projector: Projector
    poison: PoisonSink


def compose(parts: Components) -> Root:
    return Root(parts.projector, parts.poison_sink("projector", parts.settings.projector_failure_queue_url))


def create_handler(root: Callable[[], Root]) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)

    def project_record(record: DynamoDBRecord) -> None:
        event = StoredEvent.from_stream_record(record.raw_event)
        if event is not None:
            root().projector.project([event])

    record_handler = setting_aside_poison(project_record, lambda: root().poison)

    @logger.inject_lambda_context
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return process_partial_response(  # type: ignore[return-value]  # a TypedDict of the same shape
            event=event, record_handler=record_handler, processor=processor, context=context
        )

    return handler


handler = create_handler(lazy_root(compose))
