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
from lighthouse_tools.localcloud.durable.restored import (
    RECOVERY_ERROR,
    LazyPartition,
    RestoredExecution,
    attribute,
    stored_item,
)

logger = logging.getLogger("lighthouse.localcloud.durable")

# Finished executions kept per state machine across restarts (AWS keeps them 90 days).
FINISHED_EXECUTIONS_KEPT = 1000


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


def _as_records(snapshot: dict[str, Any]) -> Any:
    """The snapshot's queues, secrets, objects and state machines as the journal records that make them."""
    for name, messages in snapshot["queues"].items():
        for state in messages:
            yield ("sqs_put", name, state)
    for name, secret in snapshot["secrets"].items():
        yield ("secret", name, secret)
    for bucket, objects in snapshot["objects"].items():
        for key, value in objects.items():
            yield ("s3_put", bucket, key, value)
    for arn, (name, definition, role, kind) in snapshot["machines"].items():
        yield ("sfn_machine", arn, name, definition, role, kind)


def _put_image(table: Any, hash_key: Any, range_key: Any, attributes: dict[str, Any]) -> None:
    if range_key is None:
        table.items[hash_key] = stored_item(hash_key, None, attributes)
        return
    partition = table.items.get(hash_key)
    if partition is None:  # a new partition: built when first used, as the snapshot's are
        table.items[hash_key] = LazyPartition(hash_key, table.range_key_attr, [attributes])
    elif not (isinstance(partition, LazyPartition) and partition.add(attributes)):
        partition[range_key] = stored_item(hash_key, range_key, attributes)


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
        for record in _as_records(snapshot):
            self.apply(record, restored)
        for execution in snapshot["executions"]:
            restored.executions[execution["arn"]] = execution
        restored.checkpoints.update({f: dict(s) for f, s in snapshot["checkpoints"].items()})

    @staticmethod
    def _load_items(table: Any, images: list[dict[str, Any]]) -> None:
        from moto.dynamodb.models.dynamo_type import DynamoType

        hash_name, range_name = table.hash_key_attr, table.range_key_attr
        if not range_name:
            for attributes in images:
                hash_key = attribute(DynamoType, attributes[hash_name])
                table.items[hash_key] = stored_item(hash_key, None, attributes)
            return
        partitions: dict[tuple[str, Any], list[dict[str, Any]]] = {}
        for attributes in images:
            ((kind, value),) = attributes[hash_name].items()
            partitions.setdefault((kind, value), []).append(attributes)
        for (kind, value), members in partitions.items():
            hash_key = attribute(DynamoType, {kind: value})
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
            hash_key = attribute(DynamoType, hash_json)
            range_key = attribute(DynamoType, range_json) if range_json is not None else None
            if attributes is None:
                partition = table.items.get(hash_key, {}) if range_key is not None else table.items
                partition.pop(range_key if range_key is not None else hash_key, None)
            else:
                _put_image(table, hash_key, range_key, attributes)
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
