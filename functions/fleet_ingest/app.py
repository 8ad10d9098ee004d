"""SQS consumer: what agents publish over MQTT, forwarded by the topic rules (IoT Core on AWS, the
local rule runner beside mosquitto), each message the rule's selection: the payload's fields plus
`topic` and `received_at` (epoch milliseconds).

Records are grouped by agent and each agent's are recorded together (its burst of five snapshots is
one append, not five), which Powertools' BatchProcessor cannot do: it hands records over one at a
time. The response is the same partial batch response it builds. A message that can never be
recorded (not strict JSON, a topic outside the contract, an agent that is not registered, a
malformed payload) goes to the dead-letter queue at once with the reason; the rest of its agent's
messages are then recorded one by one. A failure for a passing reason is retried (the agent's
messages are reported as failed; recording them again changes nothing that was recorded).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from lighthouse.composition import Components, lazy_root
from lighthouse.consumers import PERMANENT, LambdaHandler, PoisonSink
from lighthouse.errors import MalformedRequest
from lighthouse.fleet.contract import MAX_PAYLOAD_BYTES
from lighthouse.fleet.models import Report
from lighthouse.fleet.service import FleetService
from lighthouse.logs import logger as logger_for
from lighthouse.observability import instrumented
from lighthouse.strictjson import loads_object

logger = logger_for("lighthouse-fleet-ingest")
Item = tuple[dict[str, Any], Report]


@dataclass(frozen=True)
class Root:
    fleet: FleetService
    poison: PoisonSink


def compose(parts: Components) -> Root:
    return Root(parts.fleet, parts.poison_sink("fleet-ingest", parts.settings.fleet_ingest_dead_letter_queue_url))


def report_of(record: SQSRecord) -> Report:
    body = loads_object(record.body, max_bytes=MAX_PAYLOAD_BYTES + 1024, where="message")
    if not isinstance(body.get("topic"), str):
        raise MalformedRequest("message must be a JSON object with the rule's `topic`")
    topic = body.pop("topic")
    received = body.pop("received_at", None)
    at = received / 1000 if isinstance(received, int | float) and not isinstance(received, bool) else 0.0
    return Report(topic, body, at)


def create_handler(root: Callable[[], Root]) -> LambdaHandler:
    def record_group(fleet: FleetService, poison: PoisonSink, agent_id: str, items: list[Item]) -> list[str]:
        """Message ids to retry."""
        try:
            fleet.ingest_agent(agent_id, [report for _, report in items])
            return []
        except PERMANENT:
            pass  # one of them is poison: find it
        except Exception:
            logger.exception("recording an agent's messages failed; they will be retried", extra={"agent": agent_id})
            return [raw["messageId"] for raw, _ in items]
        retry = []
        for raw, report in items:
            try:
                fleet.ingest_agent(agent_id, [report])
            except PERMANENT as error:
                poison.put(raw, error)
            except Exception:
                retry.append(raw["messageId"])
        return retry

    @logger.inject_lambda_context
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        parts = root()
        groups: dict[str, list[Item]] = {}
        for raw in event.get("Records", []):
            try:
                report = report_of(SQSRecord(raw))
                groups.setdefault(parts.fleet.agent_of(report.topic), []).append((raw, report))
            except PERMANENT as error:
                parts.poison.put(raw, error)
        retry = [
            m for agent_id, items in groups.items() for m in record_group(parts.fleet, parts.poison, agent_id, items)
        ]
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in retry]}

    return handler


handler = instrumented(logger, create_handler(lazy_root(compose)))
