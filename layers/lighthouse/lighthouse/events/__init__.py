"""The event store: append-only streams of typed events, snapshots, and projections to read models."""

from lighthouse.errors import ConcurrencyError
from lighthouse.events.model import StoredEvent
from lighthouse.events.projector import CounterProjection, Projection, Projector, ReadModelStore
from lighthouse.events.store import EventStore, Fold
from lighthouse.events.types import Event

__all__ = [
    "ConcurrencyError",
    "CounterProjection",
    "Event",
    "EventStore",
    "Fold",
    "Projection",
    "Projector",
    "ReadModelStore",
    "StoredEvent",
]
