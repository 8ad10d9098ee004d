"""SQS consumer: heartbeats from agents that publish to the presence queue instead of calling HTTP.

A message that fails (bad JSON, bad token) is reported as a batch item failure; after the
queue's maxReceiveCount it lands in the dead-letter queue for inspection.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from lighthouse import wiring
from lighthouse.agents.models import HeartbeatRequest, QueuedHeartbeat
from lighthouse.http import parse_body

logger = Logger(service="lighthouse-presence-ingest")
processor = BatchProcessor(event_type=EventType.SQS)
MAX_MESSAGE_BYTES = 16 * 1024


def record_heartbeat(record: SQSRecord) -> None:
    message = parse_body(QueuedHeartbeat, record.body.encode(), MAX_MESSAGE_BYTES)
    service = wiring.agent_service()
    principal = service.authenticate(f"Bearer {message.token}")
    service.heartbeat(principal, HeartbeatRequest(status=message.status, metadata=message.metadata))


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(  # type: ignore[return-value]  # a TypedDict of the same shape
        event=event, record_handler=record_heartbeat, processor=processor, context=context
    )
