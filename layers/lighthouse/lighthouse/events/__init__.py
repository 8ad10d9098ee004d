"""The event store: append-only streams in DynamoDB, snapshots, and projections to read models."""

from lighthouse.errors import ConcurrencyError
from lighthouse.events.model import NewEvent, StoredEvent
from lighthouse.events.projector import CounterProjection, Projection, Projector, ReadModelStore
from lighthouse.events.store import EventStore, Reducer

__all__ = [
    "ConcurrencyError",
    "CounterProjection",
    "EventStore",
    "NewEvent",
    "Projection",
    "Projector",
    "ReadModelStore",
    "Reducer",
    "StoredEvent",
]
