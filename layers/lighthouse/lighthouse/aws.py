"""boto3 clients built once per process from settings; logic receives them injected."""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

from lighthouse.config import get_settings

_CLIENT_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=64)
# Building a client loads service models (slow); concurrent first requests must not all build one.
_creating = threading.Lock()


@lru_cache(maxsize=16)
def _build(service: str) -> Any:
    endpoint = get_settings().aws_endpoint_url or None
    return boto3.session.Session().client(service, endpoint_url=endpoint, config=_CLIENT_CONFIG)  # type: ignore[call-overload]


def client(service: str) -> Any:
    with _creating:
        return _build(service)


def reset() -> None:
    _build.cache_clear()
