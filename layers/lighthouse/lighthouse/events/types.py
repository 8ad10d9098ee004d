"""Typed, versioned events: one frozen pydantic model per event type.

Each event class names its wire type (`TYPE`, the string stored in the item's `type` attribute;
never derived from the class's module or name, so moving code never orphans stored history) and
the version of its payload's shape (`VERSION`, from 1). A stored event carries the version it was
written with (absent means 1). Reading it applies `upcast_v1_v2`, `upcast_v2_v3`, ... (static
methods on the class, pure dict -> dict) up to the current version, then validates the payload.
Writers always write the current version; history is never rewritten. A snapshot is a cache: when a
state's shape changes, its fold gets a new name and old snapshots are ignored.
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from lighthouse.errors import LighthouseError

REGISTRY: dict[str, type[Event]] = {}
# The modules that declare events; imported before the first decode, so every function can read
# every event (the projector reads them all) whatever its own imports are.
CATALOG = (
    "lighthouse.agents.models",
    "lighthouse.auth.hook_tokens",
    "lighthouse.elicitation.models",
    "lighthouse.validation.models",
    "lighthouse.pipelines.models",
    "lighthouse.fleet.models",
    "lighthouse.fleet.rollouts",
    "lighthouse.runs.models",
    "lighthouse.runs.store",
    "lighthouse.history.models",
    "lighthouse.flags.models",
    "lighthouse.push.models",
)


class EventDecodeError(LighthouseError):
    """A stored event that this Lighthouse cannot read: unknown type, newer version, bad payload."""

    code = "EVENT_DECODE_ERROR"


class Event(BaseModel):
    """A domain event's payload. Principal and correlation ids travel in the stored metadata."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.__dict__.get("TYPE"):
            _register(cls)


def _register(cls: type[Event]) -> None:
    existing = REGISTRY.get(cls.TYPE)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        raise TypeError(f"event type {cls.TYPE!r} is declared by {existing.__qualname__} and {cls.__qualname__}")
    missing = [f"upcast_v{v}_v{v + 1}" for v in range(1, cls.VERSION) if not hasattr(cls, f"upcast_v{v}_v{v + 1}")]
    if missing:
        raise TypeError(f"{cls.__qualname__} is at version {cls.VERSION} but lacks {', '.join(missing)}")
    REGISTRY[cls.TYPE] = cls


_catalog_loaded = False


def load_catalog() -> dict[str, type[Event]]:
    """Every declared event type (importing the modules that declare them, once)."""
    global _catalog_loaded
    if not _catalog_loaded:
        for module in CATALOG:
            importlib.import_module(module)
        _catalog_loaded = True
    return REGISTRY


def event_class(type_name: str) -> type[Event]:
    cls = REGISTRY.get(type_name) or load_catalog().get(type_name)
    if cls is None:
        raise EventDecodeError(f"unknown event type {type_name!r}")
    return cls


def decode(type_name: str, version: int, data: Any) -> Event:
    """The current model of a stored payload, upcast from the version it was written with."""
    cls = event_class(type_name)
    if version > cls.VERSION:
        raise EventDecodeError(
            f"{type_name} v{version} was written by a newer Lighthouse (this one reads up to v{cls.VERSION})"
        )
    for step in range(version, cls.VERSION):
        data = getattr(cls, f"upcast_v{step}_v{step + 1}")(data)
    try:
        return cls.model_validate(data)
    except ValidationError as error:
        raise EventDecodeError(f"{type_name} v{version} does not match its model: {error}") from error


def encode(event: Event) -> tuple[str, int, dict[str, Any]]:
    """(type, version, JSON payload) of an event, as the store writes it."""
    if not event.TYPE:
        raise TypeError(f"{type(event).__qualname__} has no TYPE")
    return event.TYPE, event.VERSION, event.model_dump(mode="json", by_alias=True)


def json_schema(cls: type[Event]) -> dict[str, Any]:
    """The JSON Schema of an event's payload, as written to schemas/events/<TYPE>.json."""
    schema = cls.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://lighthouse.local/schemas/events/{cls.TYPE}.json",
        "title": cls.TYPE,
        "x-lighthouse-event-version": cls.VERSION,
        **{key: value for key, value in schema.items() if key != "title"},
    }


class Probe(Event):
    """An event that means nothing to any context: benchmarks and operators append it to measure the
    append path (the floor every latency goal is stated against); every consumer ignores it."""

    TYPE: ClassVar[str] = "LIGHTHOUSE_PROBE"

    n: int = 0
