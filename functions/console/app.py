"""The web console's static files (API Gateway -> this function -> the console bucket), on the
API's origin: GET /console and GET /console/{asset+}."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lighthouse.composition import Components, lazy_root
from lighthouse.console.assets import ConsoleAssets
from lighthouse.logs import logger as logger_for
from lighthouse.observability import instrumented

logger = logger_for("lighthouse-console")
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class Root:
    assets: ConsoleAssets


def compose(parts: Components) -> Root:
    return Root(ConsoleAssets(parts.client("s3"), parts.settings.console_bucket))


def create_handler(root: Callable[[], Root]) -> LambdaHandler:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        asset = (event.get("pathParameters") or {}).get("asset")
        return root().assets.serve(asset, str(event.get("path") or ""))

    return handler


handler = instrumented(logger, create_handler(lazy_root(compose)))
