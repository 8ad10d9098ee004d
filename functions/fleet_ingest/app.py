"""SQS consumer: what agents publish over MQTT, forwarded by the topic rules (IoT Core on AWS, the
local rule runner beside mosquitto), each message the rule's selection: the payload's fields plus
`topic` and `received_at` (epoch milliseconds).

A message that can never be recorded (not strict JSON, a topic outside the contract, an agent that
is not registered, a malformed payload) goes to the dead-letter queue at once with the reason; one
that fails for a passing reason is retried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from lighthouse.composition import Components, lazy_root
from lighthouse.consumers import LambdaHandler, PoisonSink, batch_handler
from lighthouse.errors import MalformedRequest
from lighthouse.fleet.contract import MAX_PAYLOAD_BYTES
from lighthouse.fleet.service import FleetService
from lighthouse.strictjson import loads_object

logger = Logger(service="lighthouse-fleet-ingest")


@dataclass(frozen=True)
class Root:
    fleet: FleetService
    poison: PoisonSink


def compose(parts: Components) -> Root:
    return Root(parts.fleet, parts.poison_sink("fleet-ingest", parts.settings.fleet_ingest_dead_letter_queue_url))


def create_handler(root: Callable[[], Root]) -> LambdaHandler:
    def record_message(record: SQSRecord) -> None:
        body = loads_object(record.body, max_bytes=MAX_PAYLOAD_BYTES + 1024, where="message")
        if not isinstance(body.get("topic"), str):
            raise MalformedRequest("message must be a JSON object with the rule's `topic`")
        topic = body.pop("topic")
        received = body.pop("received_at", None)
        at = received / 1000 if isinstance(received, int | float) and not isinstance(received, bool) else None
        root().fleet.ingest(topic, body, at)

    return batch_handler(EventType.SQS, record_message, lambda: root().poison, logger)


handler = create_handler(lazy_root(compose))
