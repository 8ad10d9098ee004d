"""SQS consumer: heartbeats from agents that publish to the presence queue instead of calling HTTP.

A message that can never be processed (not strict JSON, invalid fields, a bad or expired token) is
set aside at once in the dead-letter queue with the reason; one that fails for a passing reason is
reported as a batch item failure and retried (the queue's maxReceiveCount still applies).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from lighthouse import wiring
from lighthouse.agents.models import HeartbeatRequest, QueuedHeartbeat
from lighthouse.config import get_settings
from lighthouse.consumers import PoisonSink, setting_aside_poison
from lighthouse.http import parse_body

logger = Logger(service="lighthouse-presence-ingest")
processor = BatchProcessor(event_type=EventType.SQS)
MAX_MESSAGE_BYTES = 16 * 1024


def record_heartbeat(record: SQSRecord) -> None:
    message = parse_body(QueuedHeartbeat, record.body.encode("utf-8", "surrogatepass"), MAX_MESSAGE_BYTES, "message")
    service = wiring.agent_service()
    principal = service.authenticate(f"Bearer {message.token}")
    service.heartbeat(principal, HeartbeatRequest(status=message.status, metadata=message.metadata))


def _sink() -> PoisonSink:
    return wiring.poison_sink("presence-ingest", get_settings().presence_dead_letter_queue_url)


record_handler = setting_aside_poison(record_heartbeat, _sink)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(  # type: ignore[return-value]  # a TypedDict of the same shape
        event=event, record_handler=record_handler, processor=processor, context=context
    )
