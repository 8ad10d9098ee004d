"""SQS consumer: heartbeats from agents that publish to the presence queue instead of calling HTTP.

A message that can never be processed (not strict JSON, invalid fields, a bad or expired token) is
set aside at once in the dead-letter queue with the reason; one that fails for a passing reason is
reported as a batch item failure and retried (the queue's maxReceiveCount still applies).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools.utilities.batch import EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from lighthouse.agents.models import HeartbeatRequest, QueuedHeartbeat
from lighthouse.agents.service import AgentService
from lighthouse.composition import Components, lazy_root
from lighthouse.consumers import LambdaHandler, PoisonSink, batch_handler
from lighthouse.http import parse_body
from lighthouse.logs import logger as logger_for
from lighthouse.observability import instrumented

logger = logger_for("lighthouse-presence-ingest")
MAX_MESSAGE_BYTES = 16 * 1024


@dataclass(frozen=True)
class Root:
    agents: AgentService
    poison: PoisonSink


def compose(parts: Components) -> Root:
    return Root(parts.agents, parts.poison_sink("presence-ingest", parts.settings.presence_dead_letter_queue_url))


def create_handler(root: Callable[[], Root]) -> LambdaHandler:
    def record_heartbeat(record: SQSRecord) -> None:
        body = record.body.encode("utf-8", "surrogatepass")
        message = parse_body(QueuedHeartbeat, body, MAX_MESSAGE_BYTES, "message")
        agents = root().agents
        principal = agents.authenticate(f"Bearer {message.token}")
        agents.heartbeat(principal, HeartbeatRequest(status=message.status, metadata=message.metadata))

    return batch_handler(EventType.SQS, record_heartbeat, lambda: root().poison, logger)


handler = instrumented(logger, create_handler(lazy_root(compose)))
