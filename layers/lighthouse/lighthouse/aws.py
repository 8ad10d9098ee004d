"""boto3 clients built once per process from settings; logic receives them injected."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

from lighthouse.config import get_settings

_CLIENT_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=64)


@lru_cache(maxsize=16)
def client(service: str) -> Any:
    endpoint = get_settings().aws_endpoint_url or None
    return boto3.session.Session().client(service, endpoint_url=endpoint, config=_CLIENT_CONFIG)  # type: ignore[call-overload]
