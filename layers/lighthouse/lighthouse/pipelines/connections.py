"""Named LLM connections: the only way a pipeline reaches a model provider with a key.

A connection is a Secrets Manager secret `<prefix>/<name>` holding {provider, base_url, api_key}.
A manifest names a connection; it can set neither a URL nor where a key comes from. So whoever
registers pipelines can choose which approved endpoint an agent talks to, never send a key (or
any other secret the stage function can see) to a server of their choosing. Only admins create
connections, and the stage function's role may read secrets under the prefix and nothing else.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lighthouse import strictjson
from lighthouse.errors import NotFound
from lighthouse.pipelines.errors import ConfigStageError

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$"
Providers = Literal["openai", "anthropic", "ollama"]
CACHE_SECONDS = 60.0


class Connection(BaseModel):
    """What an admin stores; the key never leaves the platform through the API."""

    model_config = ConfigDict(extra="forbid", strict=True)

    provider: Providers
    base_url: str = Field(
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$", max_length=500, description="the only URL this key is sent to"
    )
    api_key: str = Field(default="", max_length=4096, repr=False, description="empty for keyless providers")


class ConnectionView(BaseModel):
    name: str
    provider: str
    base_url: str
    has_key: bool


class ConnectionList(BaseModel):
    connections: list[ConnectionView]


class ConnectionStore:
    def __init__(self, secretsmanager: Any, prefix: str) -> None:
        self._secrets = secretsmanager
        self._prefix = prefix.rstrip("/")
        self._cache: dict[str, tuple[float, Connection]] = {}

    def _id(self, name: str) -> str:
        return f"{self._prefix}/{name}"

    def put(self, name: str, connection: Connection) -> ConnectionView:
        value = connection.model_dump_json()
        try:
            self._secrets.put_secret_value(SecretId=self._id(name), SecretString=value)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            self._secrets.create_secret(
                Name=self._id(name), SecretString=value, Description="Lighthouse LLM connection"
            )
        self._cache.pop(name, None)
        return _view(name, connection)

    def get(self, name: str) -> Connection:
        """The connection, for a stage (ConfigStageError if it is missing or unreadable)."""
        cached = self._cache.get(name)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        try:
            raw = self._secrets.get_secret_value(SecretId=self._id(name))["SecretString"]
            connection = Connection.model_validate(strictjson.loads(raw, max_bytes=16 * 1024, where="connection"))
        except ClientError as error:
            raise ConfigStageError(f"connection {name!r} cannot be read: {error.response['Error']['Code']}") from error
        except (ValidationError, ValueError) as error:
            raise ConfigStageError(f"connection {name!r} is not a valid connection: {error}") from error
        self._cache[name] = (time.monotonic() + CACHE_SECONDS, connection)
        return connection

    def list(self) -> ConnectionList:
        views: list[ConnectionView] = []
        paginator = self._secrets.get_paginator("list_secrets")
        for page in paginator.paginate(Filters=[{"Key": "name", "Values": [f"{self._prefix}/"]}]):
            for entry in page.get("SecretList", []):
                name = str(entry["Name"]).removeprefix(f"{self._prefix}/")
                if entry.get("DeletedDate") or "/" in name:
                    continue
                try:
                    views.append(_view(name, self.get(name)))
                except ConfigStageError:
                    continue
        return ConnectionList(connections=sorted(views, key=lambda view: view.name))

    def delete(self, name: str) -> None:
        try:
            self._secrets.delete_secret(SecretId=self._id(name), ForceDeleteWithoutRecovery=True)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ResourceNotFoundException":
                raise NotFound(f"no connection {name!r}") from error
            raise
        self._cache.pop(name, None)


def _view(name: str, connection: Connection) -> ConnectionView:
    return ConnectionView(
        name=name, provider=connection.provider, base_url=connection.base_url, has_key=bool(connection.api_key)
    )
