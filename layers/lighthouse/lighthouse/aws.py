"""boto3 clients for one composition root: built on first use, then reused by everything it composes."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

CLIENT_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=64)


class AwsClients:
    """One client per service, on the given endpoint (the emulator's, or None for AWS)."""

    def __init__(self, endpoint_url: str | None = None, config: Config = CLIENT_CONFIG) -> None:
        self._endpoint_url = endpoint_url or None
        self._config = config
        self._session = boto3.session.Session()
        self._clients: dict[str, Any] = {}
        # Building a client loads service models (slow); concurrent first requests must not all build one.
        self._creating = threading.Lock()

    @classmethod
    def shared(cls, endpoint_url: str | None = None) -> AwsClients:
        """The process's clients for an endpoint. boto3 clients are thread-safe and slow to build, so a
        process keeps one set, as a connection pool: on Lambda a process is one container; in the
        local cloud the containers running as threads of one process share it."""
        with _shared_lock:
            clients = _shared.get(endpoint_url or None)
            if clients is None:
                clients = _shared[endpoint_url or None] = cls(endpoint_url)
            return clients

    def client(self, service: str) -> Any:
        with self._creating:
            built = self._clients.get(service)
            if built is None:
                built = self._clients[service] = self._session.client(  # type: ignore[call-overload]
                    service, endpoint_url=self._endpoint_url, config=self._config
                )
            return built

    @property
    def region(self) -> str:
        return self._session.region_name or "us-east-1"

    def client_at(self, service: str, endpoint_url: str) -> Any:
        """A client of a service whose endpoint is per resource (API Gateway's @connections)."""
        key = f"{service}@{endpoint_url}"
        with self._creating:
            built = self._clients.get(key)
            if built is None:
                built = self._clients[key] = self._session.client(  # type: ignore[call-overload]
                    service, endpoint_url=endpoint_url, config=self._config
                )
            return built


_shared: dict[str | None, AwsClients] = {}
_shared_lock = threading.Lock()
