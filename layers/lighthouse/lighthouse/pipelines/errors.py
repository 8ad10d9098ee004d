"""Stage failures. The class name is the Lambda `errorType`, which the compiled Retry and Catch match,
so each category has its own class (see `compiler.error_name`)."""

from __future__ import annotations

from typing import Any

from lighthouse.pipelines.manifests import Category


class StageError(Exception):
    category: Category = "config"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class JsonStageError(StageError):
    category = "json"


class ToolStageError(StageError):
    """The tool ran and failed (non-zero exit, missing file, timeout)."""

    category = "tool"


class SecurityStageError(StageError):
    """The call was refused: confinement, allowlist, safe mode, a plugin's veto, an agent's permissions."""

    category = "security"


class LlmStageError(StageError):
    category = "llm"


class ContextStageError(StageError):
    category = "context"


class RoutingStageError(StageError):
    category = "routing"


class ConfigStageError(StageError):
    """The pipeline is misconfigured for this call (an undeclared tool, arguments its schema refuses)."""

    category = "config"


class TaskCancelled(Exception):
    """The task was cancelled: no further stage runs."""


BY_CATEGORY: dict[str, type[StageError]] = {
    cls.category: cls
    for cls in (
        JsonStageError,
        ToolStageError,
        SecurityStageError,
        LlmStageError,
        ContextStageError,
        RoutingStageError,
        ConfigStageError,
    )
}
