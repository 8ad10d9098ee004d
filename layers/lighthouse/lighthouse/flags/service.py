"""The flags application service: read, change and roll out the document; evaluate a flag."""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.utilities.feature_flags import FeatureFlags
from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider

from lighthouse.auth.tokens import Principal
from lighthouse.clock import Clock
from lighthouse.errors import ConcurrencyError, Conflict, DependencyUnavailable, NotFound
from lighthouse.flags import logic
from lighthouse.flags.models import FlagEvaluation, FlagsChanged, FlagsView, PutFlags
from lighthouse.flags.store import AppConfigPublisher, FlagsLog, FlagsVersion, LastKnownGood
from lighthouse.logs import logger as logger_for

logger = logger_for("lighthouse-flags")
ROLLOUT_ATTEMPTS = 5


class FlagsService:
    """`store` is what evaluations read (AppConfig through Powertools, or the event store), wrapped so
    that an unreachable store never fails a request; `publisher` is set where AppConfig is the store."""

    def __init__(
        self,
        log: FlagsLog,
        store: StoreProvider,
        clock: Clock,
        *,
        store_name: Literal["appconfig", "events"],
        cache_seconds: float,
        publisher: AppConfigPublisher | None = None,
    ) -> None:
        self._log = log
        self._store = LastKnownGood(store)
        self._flags = FeatureFlags(store=self._store)
        self._clock = clock
        self._store_name = store_name
        self._cache_seconds = cache_seconds
        self._publisher = publisher

    # ---- evaluation -------------------------------------------------------------------------

    def enabled(self, flag: str, agent_id: str, role: str) -> bool:
        """The flag's value for this agent; its declared default if the store has none or is down."""
        default = logic.DECLARED[flag].default if flag in logic.DECLARED else False
        if flag not in self._store.get_configuration():
            return default  # (Powertools warns on every evaluation of an empty document)
        value = self._flags.evaluate(name=flag, context=logic.context(flag, agent_id, role), default=default)
        return bool(value)

    def evaluation(self, flag: str, agent_id: str, role: str) -> FlagEvaluation:
        return FlagEvaluation(flag=flag, agent_id=agent_id, role=role, enabled=self.enabled(flag, agent_id, role))

    # ---- the document -----------------------------------------------------------------------

    def view(self) -> FlagsView:
        return self._view(self._log.latest())

    def put(self, principal: Principal, request: PutFlags) -> FlagsView:
        document = logic.validated(request.flags)
        current = self._log.latest()
        if request.expected_version is not None and request.expected_version != current.version:
            raise Conflict(
                f"the flags document is at version {current.version}, not {request.expected_version}",
                {"version": current.version},
            )
        return self._commit(principal, current, document)

    def rollout(self, principal: Principal, flag: str, percent: int) -> FlagsView:
        for _ in range(ROLLOUT_ATTEMPTS):
            current = self._log.latest()
            if flag not in current.document and flag not in logic.DECLARED:
                raise NotFound(
                    f"no flag {flag!r}: declare it with PUT /flags first", {"declared": sorted(logic.DECLARED)}
                )
            document = logic.validated(logic.with_rollout(current.document, flag, percent))
            try:
                return self._commit(principal, current, document)
            except Conflict:
                continue
        raise Conflict(f"the flags document kept changing; try the rollout of {flag!r} again")

    def _commit(self, principal: Principal, current: FlagsVersion, document: dict[str, Any]) -> FlagsView:
        change = FlagsChanged(
            document=document,
            changed=logic.changed(current.document, document),
            by=principal.agent_id,
            at=self._clock.now(),
        )
        try:
            version = self._log.append(change, current.version)
        except ConcurrencyError as error:
            raise Conflict(
                "the flags document changed meanwhile; read it again", {"version": current.version}
            ) from error
        if self._publisher is not None:
            try:
                self._publisher.publish(document, f"lighthouse flags v{version} by {principal.agent_id}")
            except Exception as error:
                logger.exception("AppConfig did not take flags version %s", version)
                raise DependencyUnavailable(
                    f"flags version {version} is recorded but AppConfig did not take it ({type(error).__name__}); "
                    "PUT the document again to publish it",
                    {"version": version},
                ) from error
        return self._view(FlagsVersion(document, version, change.at, change.by))

    def _view(self, current: FlagsVersion) -> FlagsView:
        return FlagsView(
            flags=current.document,
            version=current.version,
            changed_at=current.changed_at,
            changed_by=current.changed_by,
            store=self._store_name,
            cache_seconds=self._cache_seconds,
            declared=list(logic.DECLARED.values()),
        )
