"""What the core does with a command: validate, answer a repeat from the result store, run it,
publish the result and the snapshots it changed, and ask for a restart when the result says so.

MQTT stays outside: the core publishes through a `Publisher` (paho in `client.py`, a list in tests).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from lighthouse.fleet import contract
from lighthouse_tools.agent_core import snapshots
from lighthouse_tools.agent_core.collect import CollectError, Collector
from lighthouse_tools.agent_core.components import ComponentError, Components
from lighthouse_tools.agent_core.config_store import ConfigError, ConfigStore
from lighthouse_tools.agent_core.results import ResultStore

logger = logging.getLogger("lighthouse.agent_core")
PUBLISH_CONFIRM_SECONDS = 10.0


class Sent(Protocol):
    def wait_for_publish(self, timeout: float | None = None) -> None: ...


class Publisher(Protocol):
    def publish(self, topic: str, payload: dict[str, Any], retain: bool) -> Sent: ...


@dataclass
class CoreContext:
    identity: snapshots.Identity
    runtime: snapshots.Runtime
    config: ConfigStore
    components: Components
    results: ResultStore
    publisher: Publisher
    on_heartbeat_change: Callable[[int], None]
    on_restart: Callable[[], None]
    clock: Callable[[], float] = time.time
    collector: Collector | None = None  # containers, logs and GPUs for runs (None: nothing to show)


class Core:
    def __init__(self) -> None:
        self._context: CoreContext | None = None
        self._lock = threading.Lock()  # one command at a time: each reads and writes the state dir

    def set_context(self, context: CoreContext) -> None:
        self._context = context

    @property
    def ready(self) -> bool:
        return self._context is not None

    # ---- snapshots --------------------------------------------------------------------------

    def snapshot_payloads(self, which: tuple[str, ...] = contract.SNAPSHOTS) -> dict[str, dict[str, Any]]:
        """The snapshots named (each made only if asked for: the inventory asks Docker)."""
        ctx = self._require()
        now, config = ctx.clock(), ctx.config.get()
        makers: dict[str, Callable[[], dict[str, Any]]] = {
            contract.STATUS: lambda: snapshots.status("online", now, int(config["heartbeat_s"])),
            contract.METADATA: lambda: snapshots.metadata(ctx.identity),
            contract.STATE: lambda: snapshots.core_state(ctx.runtime, now),
            contract.COMPONENTS: lambda: snapshots.components(ctx.components.installed()),
            contract.CFG_STATE: lambda: snapshots.cfg_state(config),
            contract.INVENTORY: lambda: snapshots.inventory(ctx.collector, now),
        }
        return {name: makers[name]() for name in which}

    def publish_snapshots(self, which: tuple[str, ...] = contract.SNAPSHOTS) -> list[Sent]:
        ctx = self._require()
        payloads = self.snapshot_payloads(which)
        return [ctx.publisher.publish(self._topic(name), payloads[name], True) for name in which]

    def _topic(self, suffix: str) -> str:
        return contract.topic(self._require().identity.agent_id, suffix)

    def _require(self) -> CoreContext:
        if self._context is None:
            raise RuntimeError("the core's context is not set")
        return self._context

    # ---- commands ---------------------------------------------------------------------------

    def handle(self, suffix: str, raw: bytes) -> dict[str, Any] | None:
        """Run the command published on `suffix`; the result published (None: nothing to answer)."""
        kind = contract.COMMAND_OF_TOPIC.get(suffix)
        if kind is None:
            logger.warning("ignored a message on %s: not a command topic", suffix)
            return None
        if self._context is None:
            logger.warning("refused a %s command: the core's context is not ready", kind)
            return None
        body = _parse(raw)
        request_id = body.get("request_id") if isinstance(body, dict) else None
        if not isinstance(request_id, str) or not request_id:
            logger.warning("refused a %s command without a request_id", kind)
            return None
        with self._lock:
            stored = self._context.results.get(request_id)
            if stored is not None:
                self._context.publisher.publish(self._topic(contract.RESULT_TOPICS[kind]), stored, False)
                return stored
            result, restart, changed = self._run(kind, body)
            self._finish(kind, request_id, result, restart, changed)
            return result

    def _run(self, kind: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool, tuple[str, ...]]:
        """(result, restart required, snapshots changed). Failures become results, never exceptions."""
        ctx = self._require()
        request_id = body["request_id"]
        try:
            command = contract.COMMAND_MODELS[kind].model_validate(body)
        except ValidationError as error:
            reasons = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()]
            return _failed(request_id, "invalid command: " + "; ".join(reasons), reasons=reasons), False, ()
        try:
            if isinstance(command, contract.Install):
                outcome = ctx.components.install(command)
            elif isinstance(command, contract.Uninstall):
                outcome = ctx.components.uninstall(command)
            elif isinstance(command, contract.CfgSet):
                return self._cfg_set(command)
            elif isinstance(command, contract.Collect):
                return self._collect(command)
            else:
                return _ok(request_id, snapshots_updated=list(contract.SNAPSHOTS)), False, contract.SNAPSHOTS
        except ComponentError as error:
            return _failed(request_id, str(error), restart_required=False), False, ()
        changed = (contract.COMPONENTS, contract.STATE) if outcome.restart_required else ()
        result = _ok(request_id, restart_required=outcome.restart_required, noop=not outcome.restart_required)
        return {**result, **outcome.fields}, outcome.restart_required, changed

    def _collect(self, command: contract.Collect) -> tuple[dict[str, Any], bool, tuple[str, ...]]:
        collector = self._require().collector
        if collector is None:
            return _failed(command.request_id, "this core collects nothing (no collector configured)"), False, ()
        try:
            fields = collector.collect(command)
        except CollectError as error:
            return _failed(command.request_id, str(error), kind=command.kind), False, ()
        changed = (contract.INVENTORY,) if command.kind == "inventory" else ()
        return _ok(command.request_id, **fields), False, changed

    def _cfg_set(self, command: contract.CfgSet) -> tuple[dict[str, Any], bool, tuple[str, ...]]:
        ctx = self._require()
        try:
            applied = ctx.config.apply(command.set)
        except ConfigError as error:
            return _failed(command.request_id, str(error), reasons=error.reasons, applied={}), False, ()
        if "heartbeat_s" in applied:
            ctx.on_heartbeat_change(int(applied["heartbeat_s"]))
        if "log_level" in applied:
            logging.getLogger("lighthouse").setLevel(applied["log_level"])
        return _ok(command.request_id, applied=applied), False, (contract.CFG_STATE, contract.STATUS)

    def _finish(
        self, kind: str, request_id: str, result: dict[str, Any], restart: bool, changed: tuple[str, ...]
    ) -> None:
        ctx = self._require()
        ctx.runtime.last_command = {"type": kind, "request_id": request_id, "ok": result["ok"], "at": ctx.clock()}
        ctx.runtime.restart_pending = restart
        # Stored first: a crash between storing and publishing answers the repeat with this result.
        ctx.results.put(request_id, result)
        self.publish_snapshots(tuple(dict.fromkeys((*changed, contract.STATE))))
        sent = ctx.publisher.publish(self._topic(contract.RESULT_TOPICS[kind]), result, False)
        if restart:
            # The result must reach the broker before the process goes away, or it is lost.
            sent.wait_for_publish(PUBLISH_CONFIRM_SECONDS)
            ctx.on_restart()


def _parse(raw: bytes) -> Any:
    if len(raw) > contract.MAX_PAYLOAD_BYTES:
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def _ok(request_id: str, **fields: Any) -> dict[str, Any]:
    return {"schema": contract.SCHEMA, "request_id": request_id, "ok": True, **fields}


def _failed(request_id: str, error: str, **fields: Any) -> dict[str, Any]:
    return {"schema": contract.SCHEMA, "request_id": request_id, "ok": False, "error": error, **fields}
