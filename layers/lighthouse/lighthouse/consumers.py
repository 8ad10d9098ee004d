"""Poison records: what a stream or queue consumer does with a record it can never process.

A record that cannot be parsed, or that fails validation, fails the same way on every retry. If
the consumer raised, the poller would retry it (a stream holds back every record behind it while
it does), so one bad item would stall a read model for the whole retry budget. Instead the
consumer sets it aside at once: the record goes to the consumer's failure destination (the same
queue the template names as OnFailure / DLQ) with the reason, a `PoisonRecords` metric is
counted, and the batch moves on. Failures that may pass (throttling, a lost race, a dependency
down) are still raised, so Lambda (or the local poller) retries them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from pydantic import ValidationError

from lighthouse import errors
from lighthouse.events.model import PoisonRecord, StoredEvent

# Errors that say "this input is wrong", not "try again later".
PERMANENT: tuple[type[BaseException], ...] = (
    PoisonRecord,
    errors.MalformedRequest,
    errors.ValidationFailed,
    errors.PayloadTooLarge,
    errors.Unauthenticated,
    errors.Forbidden,
    errors.NotFound,
    ValidationError,
)


class HasRawEvent(Protocol):
    @property
    def raw_event(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=HasRawEvent)


@dataclass
class PoisonSink:
    """Where one consumer's poison records go: its failure queue, a log line and a metric."""

    consumer: str
    send: Callable[[str], None]  # sends one message body to the failure queue
    logger: Logger | None = None
    namespace: str = "Lighthouse"
    set_aside: int = 0

    def put(self, record: dict[str, Any], error: BaseException) -> None:
        reason = f"{type(error).__name__}: {error}"[:2000]
        self.send(
            json.dumps(
                {
                    "requestContext": {"condition": "PoisonRecord", "consumer": self.consumer},
                    "responseContext": {"functionError": reason},
                    "record": record,
                },
                default=str,
            )
        )
        self.set_aside += 1
        # Flushed at once (EMF on stdout): the sink outlives any one invocation's metrics.
        with single_metric(name="PoisonRecords", unit=MetricUnit.Count, value=1, namespace=self.namespace) as metric:
            metric.add_dimension(name="consumer", value=self.consumer)
        if self.logger is not None:
            self.logger.warning("poison record set aside", extra={"consumer": self.consumer, "reason": reason})


def setting_aside_poison(handler: Callable[[R], None], sink: Callable[[], PoisonSink]) -> Callable[[R], None]:
    """`handler`, except that a record failing permanently goes to the sink instead of raising."""

    def handle(record: R) -> None:
        try:
            handler(record)
        except PERMANENT as error:
            sink().put(record.raw_event, error)

    return handle


def sqs_sender(client: Any, queue_url: str) -> Callable[[str], None]:
    def send(body: str) -> None:
        client.send_message(QueueUrl=queue_url, MessageBody=body)

    return send


LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def batch_handler(
    event_type: Any, handle_record: Callable[[Any], None], sink: Callable[[], PoisonSink], logger: Logger
) -> LambdaHandler:
    """A Lambda handler for a stream or queue batch: each record through `handle_record`, poison
    set aside to `sink`, the others' failures reported as a partial batch response (retried)."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, process_partial_response

    processor = BatchProcessor(event_type=event_type)
    record_handler = setting_aside_poison(handle_record, sink)

    @logger.inject_lambda_context
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return process_partial_response(  # type: ignore[return-value]  # a TypedDict of the same shape
            event=event, record_handler=record_handler, processor=processor, context=context
        )

    return handler


def stored_events(handle: Callable[[StoredEvent], object]) -> Callable[[Any], None]:
    """A record handler for the events table's stream: the record's stored event (when it is one)
    to `handle`; records that are not events (snapshots, deletions) are skipped."""

    def handle_record(record: Any) -> None:
        event = StoredEvent.from_stream_record(record.raw_event)
        if event is not None:
            handle(event)

    return handle_record
