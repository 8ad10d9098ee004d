"""The emulated account's state as plain values: taken for a snapshot, put back at start-up, and
changed record by record as the journal is replayed.

Resources themselves (tables, queues, buckets, the template's state machines) are created from
`template.yaml` at every start, as before; what is restored is their contents, plus the state
machines created at run time (pipelines) and the record of every execution. A table or queue that the
template no longer has is skipped, and said so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lighthouse_tools.localcloud.durable.capture import execution_record, message_state, secret_state

logger = logging.getLogger("lighthouse.localcloud.durable")

# Finished executions kept per state machine across restarts (AWS keeps them 90 days).
FINISHED_EXECUTIONS_KEPT = 1000
RECOVERY_ERROR = "States.ServiceRestart"


class RestoredExecution:
    """An execution from before a restart: described, listed and its history shown as Step Functions
    shows one, but with no worker behind it (moto's own Execution needs a live one)."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record  # shared with the books: a later link to the successor shows here
        self.execution_arn = self.exec_arn = record["arn"]
        self.name = record["name"]
        self.state_machine_arn = record["state_machine_arn"]
        self.execution_input = record["input"]
        self.start_date = record["start_date"]
        self.output_details = {"included": True}
        self.exec_worker = None

    @property
    def status(self) -> str:
        return str(self.record["status"])

    @property
    def stop_date(self) -> datetime | None:
        return self.record.get("stop_date")

    @property
    def output(self) -> str | None:
        return self.record.get("output")

    @property
    def error(self) -> str | None:
        return self.record.get("error")

    @property
    def cause(self) -> str | None:
        return self.record.get("cause")

    def stop(self, **_: Any) -> None:
        """It has ended already; stopping it changes nothing."""

    def to_history_output(self) -> dict[str, Any]:
        events: list[dict[str, Any]] = [
            {
                "id": 1,
                "previousEventId": 0,
                "timestamp": self.start_date,
                "type": "ExecutionStarted",
                "executionStartedEventDetails": {"input": self.execution_input, "inputDetails": {"truncated": False}},
            }
        ]
        stopped = self.stop_date or self.start_date
        if self.status == "ABORTED":
            details: dict[str, Any] = {"error": self.error or RECOVERY_ERROR, "cause": self.cause or ""}
            events.append(_event(2, stopped, "ExecutionAborted", "executionAbortedEventDetails", details))
        elif self.status == "SUCCEEDED":
            details = {"output": self.output or "null", "outputDetails": {"truncated": False}}
            events.append(_event(2, stopped, "ExecutionSucceeded", "executionSucceededEventDetails", details))
        elif self.status in ("FAILED", "TIMED_OUT"):
            kind = "ExecutionFailed" if self.status == "FAILED" else "ExecutionTimedOut"
            key = "executionFailedEventDetails" if self.status == "FAILED" else "executionTimedOutEventDetails"
            events.append(_event(2, stopped, kind, key, {"error": self.error or "", "cause": self.cause or ""}))
        return {"events": events}


def _event(number: int, at: datetime, kind: str, key: str, details: dict[str, Any]) -> dict[str, Any]:
    return {"id": number, "previousEventId": number - 1, "timestamp": at, "type": kind, key: details}


def stored_item(hash_key: Any, range_key: Any, attributes: dict[str, Any]) -> Any:
    """A moto Item from an image the emulator accepted before. Item() would check the 400 KB limit
    again as it adds each attribute, summing the sizes of all the others each time (quadratic: 80 %
    of restoring 100,000 events); the image is known to be within it."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

    item: Any = Item.__new__(Item)
    item.hash_key, item.range_key = hash_key, range_key
    attrs = LimitedSizeDict()
    dict.update(attrs, {name: _attribute(DynamoType, value) for name, value in attributes.items()})
    item.attrs = attrs
    return item


class LazyPartition(dict[Any, Any]):
    """One partition of a table with a sort key, as restored: its items become moto Items on the
    first use of the partition. Building every Item of a big table at start-up was most of the
    restore time, and most partitions (old event streams) are not read again soon."""

    def __init__(self, hash_key: Any, range_name: str, members: list[dict[str, Any]]) -> None:
        super().__init__()
        self._pending: tuple[Any, str, list[dict[str, Any]]] | None = (hash_key, range_name, members)

    def add(self, attributes: dict[str, Any]) -> bool:
        """Keep another image for later if nothing has been built yet; False once it has."""
        if self._pending is None:
            return False
        self._pending[2].append(attributes)
        return True

    def __len__(self) -> int:
        """DescribeTable counts every partition's items (the health check calls it): counted from
        the images, without building them."""
        pending = self._pending
        if pending is None:
            return dict.__len__(self)
        range_name = pending[1]
        return len({tuple(next(iter(image[range_name].items()))) for image in pending[2]})

    def _load(self) -> None:
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        from moto.dynamodb.models.dynamo_type import DynamoType

        hash_key, range_name, members = pending
        for attributes in members:
            range_key = _attribute(DynamoType, attributes[range_name])
            dict.__setitem__(self, range_key, stored_item(hash_key, range_key, attributes))


def _loading(name: str) -> Any:
    method = getattr(dict, name)

    def loaded(self: LazyPartition, *args: Any, **kwargs: Any) -> Any:
        self._load()
        return method(self, *args, **kwargs)

    loaded.__name__ = name
    return loaded


for _name in (
    "__getitem__", "__setitem__", "__delitem__", "__contains__", "__iter__", "__eq__", "__repr__",
    "__reversed__", "__or__", "__ior__", "get", "pop", "popitem", "setdefault", "update", "keys", "values",
    "items", "copy", "clear", "__reduce_ex__",
):  # fmt: skip
    setattr(LazyPartition, _name, _loading(_name))


_SCALARS = frozenset(("S", "N", "B", "BOOL", "NULL"))


def _attribute(kind: Any, value: dict[str, Any]) -> Any:
    """DynamoType(value), without its generic path for the scalar types most attributes are."""
    if len(value) == 1:
        ((type_name, content),) = value.items()
        if type_name in _SCALARS:
            attribute = kind.__new__(kind)
            attribute.type, attribute.value = type_name, content
            return attribute
    return kind(value)


@dataclass
class Backends:
    account: str
    region: str

    @property
    def dynamodb(self) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends[self.account][self.region]

    @property
    def sqs(self) -> Any:
        from moto.sqs.models import sqs_backends

        return sqs_backends[self.account][self.region]

    @property
    def secrets(self) -> Any:
        from moto.secretsmanager.models import secretsmanager_backends

        return secretsmanager_backends[self.account][self.region]

    @property
    def s3(self) -> Any:
        from moto.s3.models import s3_backends

        return s3_backends[self.account]["global"]

    @property
    def stepfunctions(self) -> Any:
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        return stepfunctions_parser_backends[self.account][self.region]


@dataclass
class Restored:
    """What replaying found, beyond the services' contents."""

    executions: dict[str, dict[str, Any]] = field(default_factory=dict)
    # table -> the functions that consume its stream (set by the local cloud from the template)
    consumers: dict[str, list[str]] = field(default_factory=dict)
    checkpoints: dict[str, dict[str, int]] = field(default_factory=dict)  # function -> shard -> sequence
    machines: dict[str, tuple[str, str, str, str]] = field(default_factory=dict)  # arn -> name, definition, role, type
    records: int = 0
    skipped: set[str] = field(default_factory=set)


class StateCodec:
    def __init__(self, backends: Backends) -> None:
        self.backends = backends

    # ---- taking a snapshot ----------------------------------------------------------------------

    def capture(self, restored: Restored) -> dict[str, Any]:
        """Everything, as plain values; the caller holds the item lock (DynamoDB is read whole)."""
        return {
            "tables": self._tables(restored),
            "queues": {
                name: [message_state(m) for m in list(q._messages)] for name, q in self.backends.sqs.queues.items()
            },
            "secrets": {name: secret_state(self.backends.secrets, name) for name in self._secret_names()},
            "objects": {
                name: {key: bytes(obj.value) for key, obj in list(bucket.keys.items())}
                for name, bucket in list(self.backends.s3.buckets.items())
            },
            "machines": dict(restored.machines),
            "executions": self._executions(),
            "checkpoints": {function: dict(shards) for function, shards in restored.checkpoints.items()},
        }

    def _secret_names(self) -> list[str]:
        return [str(secret.name) for secret in list(dict.values(self.backends.secrets.secrets))]

    def _tables(self, restored: Restored) -> dict[str, Any]:
        tables: dict[str, Any] = {}
        for name, table in self.backends.dynamodb.tables.items():
            items = []
            for value in table.items.values():
                for item in value.values() if isinstance(value, dict) else [value]:
                    items.append(item.to_json()["Attributes"])
            shard = table.stream_shard
            stream = None
            if shard is not None:
                kept = self._unconsumed(restored, name, shard)
                stream = (shard.starting_sequence_number + kept, [r.record for r in shard.items[kept:]])
            tables[name] = {"items": items, "stream": stream}
        return tables

    @staticmethod
    def _unconsumed(restored: Restored, table: str, shard: Any) -> int:
        """How many of a stream's records every consumer has delivered: the snapshot leaves them out
        (DynamoDB keeps them 24 hours; here nothing else reads them, and restoring them is most of
        the start-up time of a big directory)."""
        consumers = restored.consumers.get(table, [])
        checkpoints = [restored.checkpoints.get(function, {}).get(shard.id) for function in consumers]
        if not consumers or any(point is None for point in checkpoints):
            return 0
        delivered = min(int(point) for point in checkpoints if point is not None)
        return max(0, min(len(shard.items), delivered - int(shard.starting_sequence_number) + 1))

    def _executions(self) -> list[dict[str, Any]]:
        kept: list[dict[str, Any]] = []
        for machine in list(self.backends.stepfunctions.state_machines):
            finished: list[dict[str, Any]] = []
            for execution in list(machine.executions):
                if isinstance(execution, RestoredExecution):
                    record = dict(execution.record)
                else:
                    record = execution_record(execution)
                    record.update(
                        status=execution.status if execution.exec_status is not None else "RUNNING",
                        stop_date=execution.stop_date,
                        error=execution.error,
                        cause=execution.cause,
                    )
                (kept if record["status"] == "RUNNING" else finished).append(record)
            kept.extend(finished[-FINISHED_EXECUTIONS_KEPT:])
        return kept

    # ---- restoring ------------------------------------------------------------------------------

    def load(self, snapshot: dict[str, Any], restored: Restored) -> None:
        dynamodb = self.backends.dynamodb
        for name, content in snapshot["tables"].items():
            table = dynamodb.tables.get(name)
            if table is None:
                restored.skipped.add(f"table {name}")
                continue
            if content["stream"] is not None and table.stream_shard is not None:
                start, records = content["stream"]
                table.stream_shard.starting_sequence_number = start
                self._append_stream(table, start, records)
            self._load_items(table, content["items"])
        for name, messages in snapshot["queues"].items():
            for state in messages:
                self.apply(("sqs_put", name, state), restored)
        for name, secret in snapshot["secrets"].items():
            self.apply(("secret", name, secret), restored)
        for bucket, objects in snapshot["objects"].items():
            for key, value in objects.items():
                self.apply(("s3_put", bucket, key, value), restored)
        for arn, (name, definition, role, kind) in snapshot["machines"].items():
            self.apply(("sfn_machine", arn, name, definition, role, kind), restored)
        for record in snapshot["executions"]:
            restored.executions[record["arn"]] = record
        restored.checkpoints.update({f: dict(s) for f, s in snapshot["checkpoints"].items()})

    @staticmethod
    def _load_items(table: Any, images: list[dict[str, Any]]) -> None:
        from moto.dynamodb.models.dynamo_type import DynamoType

        hash_name, range_name = table.hash_key_attr, table.range_key_attr
        if not range_name:
            for attributes in images:
                hash_key = _attribute(DynamoType, attributes[hash_name])
                table.items[hash_key] = stored_item(hash_key, None, attributes)
            return
        partitions: dict[tuple[str, Any], list[dict[str, Any]]] = {}
        for attributes in images:
            ((kind, value),) = attributes[hash_name].items()
            partitions.setdefault((kind, value), []).append(attributes)
        for (kind, value), members in partitions.items():
            hash_key = _attribute(DynamoType, {kind: value})
            table.items[hash_key] = LazyPartition(hash_key, range_name, members)

    def apply(self, record: tuple[Any, ...], restored: Restored) -> None:
        """Replay one journal record (idempotent: it may repeat what the snapshot already holds)."""
        restored.records += 1
        kind = record[0]
        handler = getattr(self, f"_apply_{kind}", None)
        if handler is None:
            raise ValueError(f"unknown journal record {kind!r}")
        handler(restored, *record[1:])

    def note(self, change: tuple[Any, ...], restored: Restored) -> None:
        """Book-keeping only (no emulator call): a change the running emulator has already made."""
        kind = change[0]
        if kind == "sfn_machine":
            arn, name, definition, role, machine_type = change[1:]
            restored.machines[arn] = (name, definition, role, machine_type)
        elif kind == "sfn_machine_deleted":
            restored.machines.pop(change[1], None)
        elif kind == "checkpoint":
            self._apply_checkpoint(restored, *change[1:])

    def _apply_ddb(self, restored: Restored, items: list[Any], streams: list[Any]) -> None:
        from moto.dynamodb.models.dynamo_type import DynamoType

        for name, hash_json, range_json, attributes in items:
            table = self.backends.dynamodb.tables.get(name)
            if table is None:
                restored.skipped.add(f"table {name}")
                continue
            hash_key = _attribute(DynamoType, hash_json)
            range_key = _attribute(DynamoType, range_json) if range_json is not None else None
            if attributes is None:
                if range_key is not None:
                    table.items.get(hash_key, {}).pop(range_key, None)
                else:
                    table.items.pop(hash_key, None)
            elif range_key is not None:
                partition = table.items.get(hash_key)
                if partition is None:  # a new partition: built when first used, as the snapshot's are
                    table.items[hash_key] = LazyPartition(hash_key, table.range_key_attr, [attributes])
                elif not (isinstance(partition, LazyPartition) and partition.add(attributes)):
                    partition[range_key] = stored_item(hash_key, range_key, attributes)
            else:
                table.items[hash_key] = stored_item(hash_key, None, attributes)
        for name, first, records in streams:
            table = self.backends.dynamodb.tables.get(name)
            if table is not None and table.stream_shard is not None:
                self._append_stream(table, first, records)

    @staticmethod
    def _append_stream(table: Any, first: int, records: list[dict[str, Any]]) -> None:
        from moto.dynamodb.models.table import StreamRecord

        shard = table.stream_shard
        for offset, content in enumerate(records):
            position = first + offset - shard.starting_sequence_number
            if position < len(shard.items):
                continue  # already there (the snapshot was taken after this record)
            record: Any = StreamRecord.__new__(StreamRecord)  # its constructor would compute a new one
            record.record = content
            shard.items.append(record)

    def _apply_sqs_put(self, restored: Restored, queue_name: str, state: dict[str, Any]) -> None:
        from moto.sqs.models import Message

        queues = self.backends.sqs.queues
        if queue_name not in queues:
            restored.skipped.add(f"queue {queue_name}")
            return
        for queue in queues.values():  # a receive may have moved it to the dead-letter queue
            queue._messages = [m for m in queue._messages if m.id != state["id"]]
        message = Message.__new__(Message)
        message.__dict__.update(state)
        queues[queue_name]._messages.append(message)

    def _apply_sqs_del(self, restored: Restored, queue_name: str, message_ids: list[str]) -> None:
        queue = self.backends.sqs.queues.get(queue_name)
        if queue is not None:
            gone = set(message_ids)
            queue._messages = [m for m in queue._messages if m.id not in gone]

    def _apply_secret(self, restored: Restored, name: str, secret: dict[str, Any] | None) -> None:
        backend = self.backends.secrets
        exists = name in self._secret_names()
        if secret is None:
            if exists:
                backend.delete_secret(name, None, True)
            return
        if exists:
            backend.put_secret_value(name, secret["string"], secret["binary"], None, ["AWSCURRENT"])
        else:
            backend.create_secret(
                name, secret["string"], secret["binary"], secret["description"], None, None, None, [], False
            )

    def _apply_s3_put(self, restored: Restored, bucket: str, key: str, value: bytes) -> None:
        if bucket not in self.backends.s3.buckets:
            restored.skipped.add(f"bucket {bucket}")
            return
        self.backends.s3.put_object(bucket, key, value)

    def _apply_s3_del(self, restored: Restored, bucket: str, key: str) -> None:
        if bucket in self.backends.s3.buckets:
            self.backends.s3.delete_object(bucket, key)

    def _apply_sfn_machine(
        self, restored: Restored, arn: str, name: str, definition: str, role: str, kind: str
    ) -> None:
        restored.machines[arn] = (name, definition, role, kind)
        backend = self.backends.stepfunctions
        existing = next((m for m in backend.state_machines if m.arn == arn), None)
        if existing is None:
            backend.create_state_machine(name, definition, role, sm_type=kind)
        elif existing.definition != definition:
            backend.update_state_machine(arn, definition=definition)

    def _apply_sfn_machine_deleted(self, restored: Restored, arn: str) -> None:
        restored.machines.pop(arn, None)
        backend = self.backends.stepfunctions
        if any(m.arn == arn for m in backend.state_machines):
            backend.delete_state_machine(arn)

    def _apply_sfn_started(self, restored: Restored, record: dict[str, Any]) -> None:
        restored.executions[record["arn"]] = dict(record)

    def _apply_sfn_ended(self, restored: Restored, arn: str, ending: dict[str, Any]) -> None:
        record = restored.executions.get(arn)
        if record is not None:
            record.update(ending)

    def _apply_checkpoint(self, restored: Restored, function: str, shard: str, sequence: int) -> None:
        restored.checkpoints.setdefault(function, {})[shard] = sequence

    # ---- executions -----------------------------------------------------------------------------

    def place_executions(self, restored: Restored) -> list[dict[str, Any]]:
        """Put every execution back under its state machine; those that were running are marked aborted
        (the restart stopped them) and returned, to be started again."""
        machines = {m.arn: m for m in self.backends.stepfunctions.state_machines}
        interrupted = []
        now = datetime.now(UTC)
        for record in restored.executions.values():
            machine = machines.get(record["state_machine_arn"])
            if machine is None:
                continue
            if record["status"] == "RUNNING":
                record.update(status="ABORTED", stop_date=now, error=RECOVERY_ERROR)
                record["cause"] = "the local cloud restarted while this execution ran"
                interrupted.append(record)
            machine.executions.append(RestoredExecution(record))
        return interrupted
