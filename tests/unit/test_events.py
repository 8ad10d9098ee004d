"""The event catalog: every type declared once, every upcast chain complete, every version ever
written still readable, and the published JSON Schemas in step with the models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lighthouse.events.types import REGISTRY, Event, EventDecodeError, decode, encode, load_catalog
from lighthouse_tools.event_schemas import EVENT_SCHEMAS, render

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"
CATALOG = {name: cls for name, cls in load_catalog().items() if not name.startswith("TEST_")}


def test_a_type_declared_twice_is_refused_at_import() -> None:
    from typing import ClassVar

    with pytest.raises(TypeError, match="declared by"):

        class Impostor(Event):
            TYPE: ClassVar[str] = "AGENT_REGISTERED"


def test_a_version_without_its_upcasters_is_refused_at_import() -> None:
    from typing import ClassVar

    with pytest.raises(TypeError, match="lacks upcast_v1_v2"):

        class Unfinished(Event):
            TYPE: ClassVar[str] = "TEST_UNFINISHED"
            VERSION: ClassVar[int] = 2


@pytest.mark.parametrize("type_name", sorted(CATALOG))
def test_every_version_ever_written_decodes_to_the_current_model(type_name: str) -> None:
    cls = CATALOG[type_name]
    versions = sorted(FIXTURES.joinpath(type_name).glob("v*.json"))
    assert versions, f"no golden fixture for {type_name}: add tests/fixtures/events/{type_name}/v1.json"
    assert len(versions) == cls.VERSION, "one fixture per version ever written"
    for fixture in versions:
        event = decode(type_name, int(fixture.stem[1:]), json.loads(fixture.read_text()))
        assert isinstance(event, cls)
        assert decode(*encode(event)) == event  # and it round-trips at the current version


def test_an_unknown_type_or_a_payload_that_does_not_fit_is_a_decode_error() -> None:
    with pytest.raises(EventDecodeError, match="unknown event type"):
        decode("NO_SUCH_EVENT", 1, {})
    with pytest.raises(EventDecodeError, match="does not match"):
        decode("AGENT_HEARTBEAT", 1, {"at": "yesterday"})


def test_the_published_schemas_are_in_step_with_the_models() -> None:
    published = {path.name: path.read_text() for path in EVENT_SCHEMAS.glob("*.json")}
    assert published == render(), "run `lighthouse events schemas`"
    assert set(REGISTRY) >= set(CATALOG)
