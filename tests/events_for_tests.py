"""Events the store's tests write (registered like any context's, under TEST_ types)."""

from __future__ import annotations

from typing import Any, ClassVar

from lighthouse.events.types import Event


class Counted(Event):
    TYPE: ClassVar[str] = "TEST_COUNTED"

    n: int


class Written(Event):
    TYPE: ClassVar[str] = "TEST_WRITTEN"

    writer: int


class Blob(Event):
    TYPE: ClassVar[str] = "TEST_BLOB"

    blob: str


class Renamed(Event):
    """At version 3: v1 wrote `name`, v2 renamed it `title`, v3 split it into `title` and `subtitle`."""

    TYPE: ClassVar[str] = "TEST_RENAMED"
    VERSION: ClassVar[int] = 3

    title: str
    subtitle: str = ""

    @staticmethod
    def upcast_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
        return {"title": data["name"]}

    @staticmethod
    def upcast_v2_v3(data: dict[str, Any]) -> dict[str, Any]:
        title, _, subtitle = data["title"].partition(": ")
        return {"title": title, "subtitle": subtitle}
