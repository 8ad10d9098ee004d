"""Races in moto that the platform's concurrency reaches, closed for the local cloud.

moto's Step Functions backend answers SendTaskSuccess / Failure / Heartbeat (and DescribeMapRun) by
asking every RUNNING execution's evaluation environment whether the task token is its own. An
execution is RUNNING from StartExecution on, but its worker thread creates that environment a moment
later; a callback arriving in between for any other execution dereferences `None` and fails with a
500 (seen in CI: an expert's vote, which resumes the validation round, while another execution was
starting). An execution without an environment cannot own a token yet, so it is left out.

Idempotent; installed with the other emulator hooks for the life of the process.
"""

from __future__ import annotations

import threading
from typing import Any

_installed = False
_lock = threading.Lock()


def install() -> None:
    global _installed
    with _lock:
        if _installed:
            return
        _callbacks_skip_executions_not_started()
        _installed = True


def _callbacks_skip_executions_not_started() -> None:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    listed = StepFunctionsParserBackend._get_executions

    def started_executions(self: Any, execution_status: Any = None) -> list[Any]:
        # Every caller of this in the parser backend goes on to use `exec_worker.env`.
        executions = listed(self, execution_status)
        return [e for e in executions if getattr(getattr(e, "exec_worker", None), "env", None) is not None]

    StepFunctionsParserBackend._get_executions = started_executions  # type: ignore[method-assign]
