"""Telemetry sinks and plugins. Neither may fail a task: their errors are logged and swallowed.

Sinks receive every task event (the event store always has them): `stdout` prints JSON lines,
`jsonl:<path>` appends them to a file. Unless `redact: false`, prompts, completions, file contents
and command output are replaced by their length and hash before any sink sees them.

Plugins are classes named by import path in plugins.yaml, built with their `config`, whose optional
methods are called in declared order: before_task, after_task, before_stage, after_stage,
before_agent_call, after_agent_call, before_tool_call, after_tool_call, on_error, on_complete.
`before_tool_call` may return a reason to veto the call; no hook is given anything that runs a tool.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import sys
from typing import Any

from lighthouse.logs import logger as logger_for
from lighthouse.pipelines.manifests import PluginsManifest

logger = logger_for("lighthouse-pipelines")
REDACTED_FIELDS = frozenset({"prompt", "completion", "content", "stdout", "stderr", "text", "arguments"})
HOOKS = (
    "before_task",
    "after_task",
    "before_stage",
    "after_stage",
    "before_agent_call",
    "after_agent_call",
    "before_tool_call",
    "after_tool_call",
    "on_error",
    "on_complete",
)


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _digest(v) if k in REDACTED_FIELDS else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _digest(value: Any) -> dict[str, Any]:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return {"redacted": True, "length": len(text), "sha256": hashlib.sha256(text.encode()).hexdigest()[:16]}


class Telemetry:
    def __init__(self, manifest: PluginsManifest) -> None:
        self._sinks = list(manifest.telemetry.sinks)
        self.redacting = manifest.telemetry.redact

    def prepare(self, data: dict[str, Any]) -> dict[str, Any]:
        return redact(data) if self.redacting else data

    def emit(self, task_id: str, event_type: str, data: dict[str, Any]) -> None:
        line = json.dumps({"task_id": task_id, "type": event_type, "data": data}, default=str)
        for sink in self._sinks:
            try:
                if sink == "stdout":
                    sys.stdout.write(line + "\n")
                elif sink.startswith("jsonl:"):
                    with open(sink[len("jsonl:") :], "a", encoding="utf-8") as handle:
                        handle.write(line + "\n")
                else:
                    raise ValueError(f"unknown sink {sink!r}")
            except Exception:
                logger.exception("telemetry sink failed", extra={"sink": sink, "task_id": task_id})


class Plugins:
    def __init__(self, manifest: PluginsManifest) -> None:
        self._plugins: list[tuple[str, Any]] = []
        for ref in manifest.plugins:
            module, _, name = ref.import_path.partition(":")
            try:
                self._plugins.append((ref.name, getattr(importlib.import_module(module), name)(dict(ref.config))))
            except Exception:
                logger.exception("plugin failed to load", extra={"plugin": ref.name})

    def call(self, hook: str, context: dict[str, Any]) -> list[tuple[str, Any]]:
        """Run `hook` on every plugin with a copy of the context; returns (plugin, result) pairs."""
        results = []
        for name, plugin in self._plugins:
            method = getattr(plugin, hook, None)
            if method is None:
                continue
            try:
                results.append((name, method(copy.deepcopy(context))))
            except Exception:
                logger.exception("plugin hook failed", extra={"plugin": name, "hook": hook})
        return results

    def veto(self, call: dict[str, Any]) -> str | None:
        for name, result in self.call("before_tool_call", call):
            if isinstance(result, str) and result:
                return f"{name}: {result}"
        return None
