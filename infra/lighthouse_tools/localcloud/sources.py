"""Event sources as Lambda's pollers run them: SQS queues, DynamoDB Streams, schedules.

The emulator's own event source mappings would run functions in Docker, one record at a time;
these pollers deliver real-shaped batches to the local runtime instead.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from lighthouse_tools.localcloud.atomicity import WriteSignal
from lighthouse_tools.localcloud.calls import counter
from lighthouse_tools.localcloud.provision import QueueSource, Schedule, StreamSource
from lighthouse_tools.localcloud.runtime import FunctionRuntime

IDLE_SLEEP_SECONDS = 0.02
# An idle poller still looks this often, for what no write announces (a message whose visibility
# timeout ran out, records written before it subscribed).
IDLE_WAKE_SECONDS = 0.25
MAX_RECEIVE = 10


class Poller(threading.Thread):
    def __init__(self, name: str, stop: threading.Event, wake: WriteSignal | None = None) -> None:
        super().__init__(name=name, daemon=True)
        self._stop_event = stop
        self._wake = wake
        self._seen = wake.generation() if wake else 0
        self.batches = 0
        self.errors = 0

    def idle(self, seconds: float = IDLE_SLEEP_SECONDS) -> None:
        self._stop_event.wait(seconds)

    def idle_until_written(self) -> None:
        """Nothing to do: sleep until the source is written to (or IDLE_WAKE_SECONDS pass)."""
        if self._wake is None:
            self.idle()
            return
        self._seen = self._wake.wait(self._seen, IDLE_WAKE_SECONDS)

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set()


def failed_ids(payload: Any) -> list[str]:
    """Item identifiers from a partial batch response; a malformed response fails the whole batch."""
    if not isinstance(payload, dict) or "batchItemFailures" not in payload:
        return []
    failures = payload["batchItemFailures"] or []
    return [str(item["itemIdentifier"]) for item in failures]


class SqsPoller(Poller):
    def __init__(
        self,
        source: QueueSource,
        sqs: Any,
        runtime: FunctionRuntime,
        region: str,
        stop: threading.Event,
        wake: WriteSignal | None = None,
    ):
        super().__init__(f"sqs:{source.function}", stop, wake)
        self.source = source
        self._sqs = sqs
        self._runtime = runtime
        self._region = region

    def run(self) -> None:
        while not self.stopping:
            try:
                seen = self._wake.generation() if self._wake else 0
                messages = self._receive()
                if not messages:
                    self._seen = seen
                    self.idle_until_written()
                    continue
                self._deliver(messages)
            except Exception:
                self.errors += 1
                self.idle(0.5)

    def _receive(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < self.source.batch_size:
            with counter.uncounted():
                response = self._sqs.receive_message(
                    QueueUrl=self.source.queue_url,
                    MaxNumberOfMessages=min(MAX_RECEIVE, self.source.batch_size - len(messages)),
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                    WaitTimeSeconds=0,
                )
            page = response.get("Messages", [])
            messages.extend(page)
            if len(page) < MAX_RECEIVE:
                break
        return messages

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "binaryValue": value.get("BinaryValue"),
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": value["DataType"],
                }
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.source.queue_arn,
            "awsRegion": self._region,
        }

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        self.batches += 1
        result = self._runtime.invoke(self.source.function, {"Records": [self._record(m) for m in messages]})
        if result.failed:
            # Lambda leaves every message: each comes back after the visibility timeout and,
            # past maxReceiveCount, the queue's redrive policy moves it to the DLQ.
            self.errors += 1
            return
        failed = set(failed_ids(result.payload)) if self.source.report_failures else set()
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), MAX_RECEIVE):
            chunk = done[start : start + MAX_RECEIVE]
            self._sqs.delete_message_batch(
                QueueUrl=self.source.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )


def matches(pattern: Any, value: Any) -> bool:
    """Lambda event-filtering patterns: nested objects; a list of allowed values or {"prefix": ...}."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            key in value and matches(sub_pattern, value[key]) for key, sub_pattern in pattern.items()
        )
    if isinstance(pattern, list):
        for allowed in pattern:
            if isinstance(allowed, dict) and "prefix" in allowed:
                if isinstance(value, str) and value.startswith(allowed["prefix"]):
                    return True
            elif value == allowed:
                return True
        return False
    return bool(pattern == value)


class StreamPoller(Poller):
    """One shard iterator per shard; a failed batch is retried from the first failed record."""

    def __init__(
        self,
        source: StreamSource,
        streams: Any,
        sqs: Any,
        runtime: FunctionRuntime,
        region: str,
        stop: threading.Event,
        retry_base_seconds: float = 0.05,
        release_iterator: Callable[[str], None] = lambda iterator: None,
        wake: WriteSignal | None = None,
        resume_after: dict[str, int] | None = None,
        checkpoint: Callable[[str, int], None] = lambda shard, sequence: None,
    ):
        super().__init__(f"stream:{source.function}", stop, wake)
        # Per shard, the last record delivered before a restart: the poller goes on after it, as a
        # Lambda event source mapping goes on from its own checkpoint.
        self._resume_after = dict(resume_after or {})
        self._checkpoint = checkpoint
        self.source = source
        self._streams = streams
        self._sqs = sqs
        self._runtime = runtime
        self._region = region
        self._retry_base = retry_base_seconds
        self._release_iterator = release_iterator
        self.records_delivered = 0
        self.discarded_batches = 0

    def run(self) -> None:
        iterators = self._open_iterators()
        while not self.stopping:
            full_batch = False
            seen = self._wake.generation() if self._wake else 0
            for shard_id, iterator in list(iterators.items()):
                if iterator is None:
                    continue
                try:
                    with counter.uncounted():
                        response = self._streams.get_records(ShardIterator=iterator, Limit=self.source.batch_size)
                except Exception:
                    self.errors += 1
                    continue
                iterators[shard_id] = response.get("NextShardIterator")
                self._release_iterator(iterator)
                records = response.get("Records", [])
                full_batch = full_batch or len(records) >= self.source.batch_size
                self._take(shard_id, records)
            if not full_batch:
                # The shards are drained: sleep until the table is written after `seen` (a write made
                # while this batch was delivered has already moved the generation, so it is not missed).
                self._seen = seen
                self.idle_until_written()

    def _take(self, shard_id: str, records: list[dict[str, Any]]) -> None:
        """Deliver a page's wanted records, then checkpoint after the page (unwanted ones included)."""
        if not records:
            return
        wanted = [r for r in records if self._wanted(r)]
        self.records_delivered += len(records) - len(wanted)
        if wanted:
            self._deliver(wanted)
        if not self.stopping:
            self._checkpoint(shard_id, int(records[-1]["dynamodb"]["SequenceNumber"]))

    def _wanted(self, record: dict[str, Any]) -> bool:
        return not self.source.filters or any(matches(pattern, record) for pattern in self.source.filters)

    def _open_iterators(self) -> dict[str, str | None]:
        with counter.uncounted():
            return self._shard_iterators()

    def _shard_iterators(self) -> dict[str, str | None]:
        description = self._streams.describe_stream(StreamArn=self.source.stream_arn)["StreamDescription"]
        return {shard["ShardId"]: self._iterator(shard) for shard in description["Shards"]}

    def _iterator(self, shard: dict[str, Any]) -> str:
        shard_id = shard["ShardId"]
        after = self._resume_after.get(shard_id)
        if after is None:
            return str(
                self._streams.get_shard_iterator(
                    StreamArn=self.source.stream_arn, ShardId=shard_id, ShardIteratorType=self.source.starting_position
                )["ShardIterator"]
            )
        first = int(shard["SequenceNumberRange"]["StartingSequenceNumber"])
        self.records_delivered += max(0, after - first + 1)  # delivered by the process before the restart
        return str(
            self._streams.get_shard_iterator(
                StreamArn=self.source.stream_arn,
                ShardId=shard_id,
                ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                SequenceNumber=str(after),
            )["ShardIterator"]
        )

    def _event(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        shaped = []
        for record in records:
            copy = dict(record)
            copy["eventSourceARN"] = self.source.stream_arn
            copy.setdefault("awsRegion", self._region)
            dynamodb = dict(copy.get("dynamodb", {}))
            created = dynamodb.get("ApproximateCreationDateTime")
            if isinstance(created, datetime):
                dynamodb["ApproximateCreationDateTime"] = created.timestamp()
            copy["dynamodb"] = dynamodb
            shaped.append(copy)
        return {"Records": shaped}

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        attempt = 0
        while not self.stopping:
            self.batches += 1
            result = self._runtime.invoke(self.source.function, self._event(records))
            if result.failed:
                failed_from = 0
            else:
                failed = failed_ids(result.payload) if self.source.report_failures else []
                if not failed:
                    self.records_delivered += len(records)
                    return
                sequence_numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
                first = failed[0]
                failed_from = sequence_numbers.index(first) if first in sequence_numbers else 0
            self.errors += 1
            self.records_delivered += failed_from
            records = records[failed_from:]
            attempt += 1
            limit = self.source.maximum_retry_attempts
            if limit != -1 and attempt > limit:
                self._discard(records, result.error_message or "batch item failures")
                return
            self.idle(min(self._retry_base * 2**attempt, 5.0))

    def _discard(self, records: list[dict[str, Any]], reason: str) -> None:
        self.discarded_batches += 1
        if not self.source.on_failure_queue_url:
            return
        sequence_numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
        self._sqs.send_message(
            QueueUrl=self.source.on_failure_queue_url,
            MessageBody=json.dumps(
                {
                    "requestContext": {
                        "condition": "RetryAttemptsExhausted",
                        "functionArn": self.source.function,
                    },
                    "responseContext": {"functionError": reason},
                    "DDBStreamBatchInfo": {
                        "streamArn": self.source.stream_arn,
                        "startSequenceNumber": sequence_numbers[0],
                        "endSequenceNumber": sequence_numbers[-1],
                        "batchSize": len(records),
                    },
                }
            ),
        )


_RATE = re.compile(r"^rate\((\d+)\s+(second|seconds|minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int:
    match = _RATE.match(expression.strip())
    if not match:
        raise ValueError(f"schedule {expression!r}: the local cloud runs rate(...) expressions only")
    amount, unit = int(match.group(1)), match.group(2).rstrip("s")
    return amount * _UNIT_SECONDS[unit]


class ScheduleRunner(Poller):
    def __init__(
        self,
        schedule: Schedule,
        runtime: FunctionRuntime,
        stepfunctions: Any,
        region: str,
        account: str,
        stop: threading.Event,
        time_scale: float = 1.0,
    ):
        super().__init__(f"schedule:{schedule.source}", stop)
        self.schedule = schedule
        self.period = max(0.05, rate_seconds(schedule.expression) * time_scale)
        self._runtime = runtime
        self._stepfunctions = stepfunctions
        self._rule_arn = f"arn:aws:events:{region}:{account}:rule/{schedule.source}"
        self._account = account
        self._region = region
        self.fired = 0

    def run(self) -> None:
        next_fire = time.monotonic() + self.period
        while not self.stopping:
            self.idle(max(0.0, next_fire - time.monotonic()))
            if self.stopping:
                return
            next_fire += self.period
            try:
                self.fire()
            except Exception:
                self.errors += 1

    def fire(self) -> None:
        self.fired += 1
        if self.schedule.state_machine_arn:
            self._stepfunctions.start_execution(
                stateMachineArn=self.schedule.state_machine_arn,
                name=f"schedule-{uuid.uuid4().hex[:16]}",
                input=self.schedule.input,
            )
        elif self.schedule.function:
            self._runtime.invoke(
                self.schedule.function,
                {
                    "version": "0",
                    "id": str(uuid.uuid4()),
                    "detail-type": "Scheduled Event",
                    "source": "aws.events",
                    "account": self._account,
                    "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "region": self._region,
                    "resources": [self._rule_arn],
                    "detail": json.loads(self.schedule.input or "{}"),
                },
            )
