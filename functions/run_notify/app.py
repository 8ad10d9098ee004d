"""SQS consumer: POST each finished run's signed notification to its notify_url.

A delivery the receiver refuses or cannot take is retried: the message is made visible again after a
growing delay (10 s, 20 s, 40 s, ... up to 15 minutes) and after the queue's maxReceiveCount tries it
goes to RunNotifyDeadLetterQueue. A message that can never be delivered (malformed, an unknown run)
is set aside there at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.batch import EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel, ConfigDict

from lighthouse.auth.keys import webhook_signing_key
from lighthouse.composition import Components, lazy_root
from lighthouse.consumers import LambdaHandler, PoisonSink, batch_handler
from lighthouse.errors import MalformedRequest, NotFound
from lighthouse.http import parse_body
from lighthouse.lazy import Lazy
from lighthouse.logs import logger as logger_for
from lighthouse.observability import instrumented
from lighthouse.runs.notify import DeliveryFailed, deliver, notification, retry_delay
from lighthouse.runs.service import RunService
from lighthouse.runs.store import run_stream

logger = logger_for("lighthouse-run-notify")
MAX_MESSAGE_BYTES = 4 * 1024


class Delivery(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    run_id: str
    delivery_id: str


@dataclass(frozen=True)
class Root:
    runs: RunService
    key: Lazy[bytes]
    now: Callable[[], float]
    sqs: Any
    queue_url: str
    poison: PoisonSink


def compose(parts: Components) -> Root:
    settings = parts.settings
    return Root(
        parts.runs,
        parts.master_secret.map(webhook_signing_key),
        parts.clock.now,
        parts.client("sqs"),
        settings.run_notify_queue_url,
        parts.poison_sink("run-notify", settings.run_notify_dead_letter_queue_url),
    )


def create_handler(root: Callable[[], Root]) -> LambdaHandler:
    def notify(record: SQSRecord) -> None:
        message = parse_body(Delivery, record.body.encode("utf-8", "surrogatepass"), MAX_MESSAGE_BYTES, "message")
        parts = root()
        try:
            state = parts.runs.state(message.run_id)
        except NotFound as error:
            raise MalformedRequest(f"no run {message.run_id!r} to notify about") from error
        if not state.notify_url:
            raise MalformedRequest(f"run {message.run_id} has no notify_url")
        try:
            status = deliver(state.notify_url, notification(state, message.delivery_id), parts.key.get(), parts.now())
        except DeliveryFailed as failed:
            tries = int(record.attributes.approximate_receive_count or 1)
            if parts.queue_url:
                parts.sqs.change_message_visibility(
                    QueueUrl=parts.queue_url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=retry_delay(tries)
                )
            logger.warning("run notification not delivered", extra={"run_id": message.run_id, "tries": tries,
                                                                       "reason": str(failed)})  # fmt: skip
            raise
        logger.info("run notification delivered", extra={"run_id": message.run_id, "status": status,
                                                           "stream": run_stream(message.run_id)})  # fmt: skip

    return batch_handler(EventType.SQS, notify, lambda: root().poison, logger)


handler = instrumented(logger, create_handler(lazy_root(compose)))
