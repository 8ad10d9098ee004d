"""`lighthouse hook claude-code`: Claude Code's PreToolUse command hook, answered by the Lighthouse gate.

Claude Code pipes the hook input (JSON) to stdin. Allow and ask are printed as hook output JSON
with exit code 0; deny exits 2 with the reason on stderr, which Claude Code shows the model and
which blocks the call. When the service cannot answer, the configured fallback applies (deny by
default: fail closed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import requests

from lighthouse import strictjson
from lighthouse.errors import MalformedRequest

Fallback = Literal["deny", "ask", "allow"]
HOOK_PATH = "/hooks/claude-code/pre-tool-use"
MAX_INPUT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class HookAnswer:
    exit_code: int
    stdout: str
    stderr: str


def _answer(decision: str, reason: str) -> HookAnswer:
    if decision == "deny":
        return HookAnswer(2, "", reason)
    output = {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": decision,
            "permissionDecisionReason": reason,
        }
    }
    return HookAnswer(0, json.dumps(output), "")


def run(stdin: str, api_url: str, token: str, on_unreachable: Fallback = "deny", timeout: float = 30.0) -> HookAnswer:
    if len(stdin.encode()) > MAX_INPUT_BYTES:
        return _answer("deny", f"Lighthouse hook: the hook input is larger than {MAX_INPUT_BYTES} bytes")
    try:
        payload = strictjson.loads_object(stdin, max_bytes=MAX_INPUT_BYTES, where="the hook input")
    except MalformedRequest as error:
        return _answer("deny", f"Lighthouse hook: {error.message} ({error.code})")
    try:
        response = requests.post(
            f"{api_url.rstrip('/')}{HOOK_PATH}",
            data=json.dumps(payload),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=timeout,
        )
        if response.status_code != 200:
            raise requests.RequestException(f"HTTP {response.status_code}: {response.text[:200]}")
        decision = response.json()["hookSpecificOutput"]
        permission, reason = decision["permissionDecision"], decision["permissionDecisionReason"]
        if permission not in ("allow", "deny", "ask"):
            raise ValueError(f"unknown permission decision {permission!r}")
    except (requests.RequestException, ValueError, KeyError, TypeError) as error:
        return _answer(
            on_unreachable, f"Lighthouse is unreachable ({type(error).__name__}: {error}); fallback: {on_unreachable}"
        )
    return _answer(permission, reason)
