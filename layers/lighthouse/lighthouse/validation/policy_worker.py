"""Parses and validates a user's Cedar policies in a child process with a time and memory limit.

The Cedar parser is native code: a text it cannot handle can overflow its stack or run away, and
that kills the whole process (every in-flight request of the container, and on the embedded cloud
the whole platform). Run as a child, the worst a text can do is kill the child, which is reported
as a 422 naming the signal. Run it as `python -m lighthouse.validation.policy_worker` with a JSON
object {policies, schema} on stdin; it prints {errors: [...], stage} or {errors: []}.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

from lighthouse.errors import DependencyUnavailable, ValidationFailed

TIME_LIMIT_SECONDS = 10
MEMORY_LIMIT_BYTES = 1024 * 1024 * 1024


def _limit_resources() -> None:  # pragma: no cover - runs in the child before exec
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (TIME_LIMIT_SECONDS, TIME_LIMIT_SECONDS + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_policy_worker(text: str, schema: str) -> ValidationFailed | None:
    """None if the policies parse and validate; else the 422 to raise, with Cedar's messages."""
    environment = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "PATH": os.environ.get("PATH", "")}
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "lighthouse.validation.policy_worker"],
            input=json.dumps({"policies": text, "schema": schema}),
            capture_output=True,
            text=True,
            timeout=TIME_LIMIT_SECONDS + 5,
            env=environment,
            preexec_fn=_limit_resources,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return ValidationFailed(
            f"the Cedar parser did not finish within {TIME_LIMIT_SECONDS} s; simplify the policies",
            {"errors": ["parser time limit exceeded"]},
        )
    except OSError as error:
        raise DependencyUnavailable(f"cannot start the policy parser: {error}") from error
    if completed.returncode < 0:
        name = signal.Signals(-completed.returncode).name
        return ValidationFailed(
            f"the Cedar parser crashed on these policies ({name}); simplify their nesting",
            {"errors": [f"parser terminated by {name}"]},
        )
    try:
        result: dict[str, Any] = json.loads(completed.stdout)
    except ValueError:
        return ValidationFailed(
            "the Cedar parser failed on these policies", {"errors": [completed.stderr.strip()[-500:] or "no output"]}
        )
    if not result["errors"]:
        return None
    message = (
        "policies do not parse as Cedar"
        if result["stage"] == "parse"
        else "policies do not validate against the Cedar schema"
    )
    return ValidationFailed(message, {"errors": result["errors"]})


def _check(request: dict[str, Any]) -> dict[str, Any]:
    import cedarpy

    try:
        cedarpy.PolicySet.from_str(request["policies"])
    except ValueError as error:
        return {"stage": "parse", "errors": [str(error)]}
    result = cedarpy.validate_policies(request["policies"], request["schema"])
    if not result.validation_passed:
        return {"stage": "validate", "errors": sorted({str(error) for error in result.errors})}
    return {"stage": "validate", "errors": []}


if __name__ == "__main__":
    print(json.dumps(_check(json.loads(sys.stdin.read()))))
