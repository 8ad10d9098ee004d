"""Where the flags document lives, behind Powertools' `StoreProvider`.

The event store keeps every version (`FLAGS_CHANGED` in the `flags#document` stream): it is the
record of who changed what, and on the emulators (where AppConfig's data plane is missing) the store
functions read. On AWS the same document is also published to AppConfig (a hosted configuration
version, then a deployment), and functions read it through Powertools' `AppConfigStore`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider
from aws_lambda_powertools.utilities.feature_flags.exceptions import ConfigurationStoreError

from lighthouse.events import EventStore
from lighthouse.flags.logic import FLAGS_STREAM
from lighthouse.flags.models import FlagsChanged
from lighthouse.logs import logger as logger_for

logger = logger_for("lighthouse-flags")


@dataclass(frozen=True)
class FlagsVersion:
    document: dict[str, Any]
    version: int
    changed_at: float | None = None
    changed_by: str | None = None


class FlagsLog:
    """Every version of the document, as events."""

    def __init__(self, events: EventStore) -> None:
        self._events = events

    def latest(self) -> FlagsVersion:
        version = self._events.current_version(FLAGS_STREAM)
        if version == 0:
            return FlagsVersion({}, 0)
        stored = self._events.load(FLAGS_STREAM, version, version)[0]
        event = stored.event
        assert isinstance(event, FlagsChanged)
        return FlagsVersion(event.document, version, event.at, event.by)

    def append(self, change: FlagsChanged, expected_version: int) -> int:
        """Raises ConcurrencyError if another change took `expected_version + 1` first."""
        stored = self._events.append(FLAGS_STREAM, [change], expected_version, {"principal": change.by})
        return stored[-1].version


class EventStoreFlags(StoreProvider):
    """The latest document from the event store, read again after `max_age` seconds."""

    def __init__(self, log: FlagsLog, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._log = log
        self._max_age = max_age
        self._clock = clock
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        try:
            return self._log.latest().document
        except Exception as error:  # any failure of the store: FeatureFlags then uses its defaults
            raise ConfigurationStoreError(f"flags store unreachable: {type(error).__name__}: {error}") from error

    def get_configuration(self) -> dict[str, Any]:
        with self._lock:
            cached = self._cached
            if cached is not None and self._clock() - cached[0] < self._max_age:
                return cached[1]
        document = self.get_raw_configuration
        with self._lock:
            self._cached = (self._clock(), document)
        return document


class LastKnownGood(StoreProvider):
    """`inner`, except that when it cannot be read the last document it gave is used (or none, so every
    flag takes its declared default), a warning is logged and `FlagStoreUnavailable` is counted:
    a request never fails because the flag store is down."""

    def __init__(self, inner: StoreProvider, namespace: str = "Lighthouse") -> None:
        self._inner = inner
        self._namespace = namespace
        self._last: dict[str, Any] | None = None
        self.failures = 0

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        return self.get_configuration()

    def get_configuration(self) -> dict[str, Any]:
        try:
            document = self._inner.get_configuration()
        except Exception as error:
            self.failures += 1
            fallback = "last known document" if self._last is not None else "declared defaults"
            logger.warning("flag store unavailable; using the %s", fallback, extra={"error": str(error)[:500]})
            with single_metric(
                name="FlagStoreUnavailable", unit=MetricUnit.Count, value=1, namespace=self._namespace
            ) as metric:
                metric.add_dimension(name="fallback", value=fallback.replace(" ", "_"))
            return self._last if self._last is not None else {}
        self._last = document
        return document


@dataclass(frozen=True)
class AppConfigTarget:
    application: str
    environment: str
    profile: str
    strategy: str


class AppConfigPublisher:
    """Publishes a document to AppConfig: a new hosted configuration version, deployed at once."""

    def __init__(self, client: Any, target: AppConfigTarget) -> None:
        self._client = client
        self._target = target

    def publish(self, document: dict[str, Any], description: str) -> int:
        target = self._target
        created = self._client.create_hosted_configuration_version(
            ApplicationId=target.application,
            ConfigurationProfileId=target.profile,
            Content=json.dumps(document).encode(),
            ContentType="application/json",
            Description=description[:1024],
        )
        number = int(created["VersionNumber"])
        self._client.start_deployment(
            ApplicationId=target.application,
            EnvironmentId=target.environment,
            DeploymentStrategyId=target.strategy,
            ConfigurationProfileId=target.profile,
            ConfigurationVersion=str(number),
            Description=description[:1024],
        )
        return number
