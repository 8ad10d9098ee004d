"""SQS consumer: heartbeats from agents that publish to the presence queue instead of calling HTTP.

A message that can never be processed (not strict JSON, invalid fields, a bad or expired token) is
set aside at once in the dead-letter queue with the reason; one that fails for a passing reason is
reported as a batch item failure and retried (the queue's maxReceiveCount still applies).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from lighthouse.agents.models import HeartbeatRequest, QueuedHeartbeat
from lighthouse.agents.service import AgentService
from lighthouse.composition import Components, lazy_root
from lighthouse.consumers import PoisonSink, setting_aside_poison
from lighthouse.http import parse_body

logger = Logger(service="lighthouse-presence-ingest")
MAX_MESSAGE_BYTES = 16 * 1024


@dataclass(frozen=True)
class Root:
    agents: AgentService
    poison: PoisonSink


def compose(parts: Components) -> Root:
    return Root(parts.agents, parts.poison_sink("presence-ingest", parts.settings.presence_dead_letter_queue_url))


def create_handler(root: Callable[[], Root]) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    processor = BatchProcessor(event_type=EventType.SQS)

    def record_heartbeat(record: SQSRecord) -> None:
        body = record.body.encode("utf-8", "surrogatepass")
        message = parse_body(QueuedHeartbeat, body, MAX_MESSAGE_BYTES, "message")
        agents = root().agents
        principal = agents.authenticate(f"Bearer {message.token}")
        agents.heartbeat(principal, HeartbeatRequest(status=message.status, metadata=message.metadata))

    record_handler = setting_aside_poison(record_heartbeat, lambda: root().poison)

    @logger.inject_lambda_context
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return process_partial_response(  # type: ignore[return-value]  # a TypedDict of the same shape
            event=event, record_handler=record_handler, processor=processor, context=context
        )

    return handler


handler = create_handler(lazy_root(compose))
