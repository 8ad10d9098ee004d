"""Append-only event streams with optimistic concurrency, typed events and transparent snapshots.

The store owns the policy (versions, batch and size limits, encoding and decoding, snapshots, the
in-process notification of waiters); a `Recorder` (DynamoDB, or in memory for unit tests) only
keeps items.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar

from lighthouse.clock import Clock, SystemClock
from lighthouse.errors import PayloadTooLarge, ValidationFailed
from lighthouse.events.model import MAX_EVENT_BYTES, StoredEvent
from lighthouse.events.recorders import Action, DynamoDBRecorder, Recorder
from lighthouse.events.types import Event
from lighthouse.notify import notifier, stream_topic

S = TypeVar("S")

# TransactWriteItems takes at most 100 actions.
MAX_BATCH = 100


class Fold(Protocol, Generic[S]):
    """Folds a stream into a state. Snapshots are kept per fold `name`: rename the fold when the
    state's shape changes, and old snapshots are ignored (they are caches, not history).

    A fold of streams that stay short (a hook token, an elicitation) sets `snapshots = False`:
    loading then skips the snapshot lookup, one read fewer on every load.
    """

    name: str
    snapshots: bool

    def initial(self) -> S: ...

    def evolve(self, state: S, event: StoredEvent) -> S: ...

    def to_snapshot(self, state: S) -> dict[str, Any]: ...

    def from_snapshot(self, data: dict[str, Any]) -> S: ...


class EventStore:
    """Streams keyed by id, events ordered by a gapless version starting at 1.

    Parameters
    ----------
    recorder:
        Where items are kept (`DynamoDBRecorder`, or `InMemoryRecorder` in unit tests).
    snapshot_every:
        A snapshot is written when loading finds at least this many events after the last one.
    """

    def __init__(self, recorder: Recorder, clock: Clock | None = None, snapshot_every: int = 1000) -> None:
        self.recorder = recorder
        self._clock = clock or SystemClock()
        self.snapshot_every = snapshot_every

    @classmethod
    def dynamodb(
        cls,
        client: Any,
        events_table: str,
        snapshots_table: str,
        clock: Clock | None = None,
        snapshot_every: int = 1000,
    ) -> EventStore:
        return cls(DynamoDBRecorder(client, events_table, snapshots_table), clock, snapshot_every)

    def append(
        self,
        stream_id: str,
        events: Sequence[Event],
        expected_version: int,
        metadata: dict[str, Any] | None = None,
        alongside: Sequence[Action] = (),
    ) -> list[StoredEvent]:
        """Append events after `expected_version` (0 for a new stream), all or nothing, together with
        the `alongside` writes (inline read models, nonces) in the same transaction.

        Raises
        ------
        ConcurrencyError
            Another writer already holds one of the versions; nothing was stored.
        AlongsideRefused
            A write alongside failed its condition (a ConcurrencyError too); nothing was stored.
        """
        return self.commit(self.prepare(stream_id, events, expected_version, metadata), alongside)

    def prepare(
        self,
        stream_id: str,
        events: Sequence[Event],
        expected_version: int,
        metadata: dict[str, Any] | None = None,
    ) -> list[StoredEvent]:
        """The events as they will be stored (ids, versions, time), checked, not yet written: a
        caller that writes read models alongside folds them first."""
        if not events:
            raise ValidationFailed("append needs at least one event")
        if len(events) > MAX_BATCH:
            raise ValidationFailed(f"at most {MAX_BATCH} events per append, got {len(events)}")
        if expected_version < 0:
            raise ValidationFailed("expected_version must be >= 0")
        now = self._clock.now()
        return [
            StoredEvent(
                stream_id=stream_id,
                version=expected_version + offset,
                event=event,
                event_id=uuid.uuid4().hex,
                recorded_at=now,
                metadata=dict(metadata or {}),
            )
            for offset, event in enumerate(events, start=1)
        ]

    def commit(self, prepared: list[StoredEvent], alongside: Sequence[Action] = ()) -> list[StoredEvent]:
        """Write prepared events (and the writes alongside them) in one transaction."""
        if len(prepared) + len(alongside) > MAX_BATCH:
            raise ValidationFailed(f"at most {MAX_BATCH} writes per append, got {len(prepared) + len(alongside)}")
        items = [event.to_item() for event in prepared]
        for item in items:
            size = len(item["data"]["S"]) + len(item["metadata"]["S"])
            if size > MAX_EVENT_BYTES:
                raise PayloadTooLarge(f"event larger than {MAX_EVENT_BYTES} bytes", {"bytes": size})
        stream_id = prepared[0].stream_id
        self.recorder.insert(stream_id, items, prepared[0].version - 1, list(alongside))
        notifier.notify(stream_topic(stream_id))
        return prepared

    def load(self, stream_id: str, from_version: int = 1, to_version: int | None = None) -> list[StoredEvent]:
        """Events of a stream with from_version <= version (<= to_version), in order, decoded."""
        return [StoredEvent.from_item(item) for item in self.recorder.select(stream_id, from_version, to_version)]

    def current_version(self, stream_id: str) -> int:
        return self.recorder.last_version(stream_id)

    def load_state(self, stream_id: str, fold: Fold[S]) -> tuple[S, int]:
        """Fold a stream, starting from its latest snapshot; returns (state, version)."""
        if not fold.snapshots:
            return self.catch_up(stream_id, fold, fold.initial(), 0)
        snapshot_key = f"{stream_id}#{fold.name}"
        state, version = fold.initial(), 0
        snapshot = self.recorder.get_snapshot(snapshot_key)
        if snapshot is not None:
            version, data = snapshot
            state = fold.from_snapshot(data)
        snapshot_version = version
        state, version = self.catch_up(stream_id, fold, state, version)
        if version - snapshot_version >= self.snapshot_every:
            self.recorder.put_snapshot(snapshot_key, version, fold.to_snapshot(state), self._clock.now())
        return state, version

    def catch_up(self, stream_id: str, fold: Fold[S], state: S, version: int) -> tuple[S, int]:
        """`state` at `version`, moved forward by the events written after it."""
        for event in self.load(stream_id, from_version=version + 1):
            state = fold.evolve(state, event)
            version = event.version
        return state, version
