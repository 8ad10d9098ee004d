"""Pure decisions of the console: the CSRF value of a session, the cookie, secrets redacted out of
execution data, an execution's graph from its ASL and each state's status from its history."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

from lighthouse.console.models import DomainLink, ExecutionKind, GraphEdge, GraphNode, HistoryEntry, StateStatus
from lighthouse.errors import Forbidden

SESSION_COOKIE = "lighthouse_session"
CSRF_HEADER = "x-lighthouse-csrf"
REDACTED = "[redacted]"
# Keys whose values are credentials: tokens (a task token, a bearer or hook token), secrets,
# passwords, keys. `tokens` / `input_tokens` (LLM token counts) are not matched.
_SECRET_KEY = re.compile(r"(^|_|-)(task|session|hook|bearer|access|refresh)?_?token$|secret|password|passwd"
                         r"|authorization|api_?key|credential|private_?key|signing_?key", re.IGNORECASE)  # fmt: skip
# Values that are credentials whatever their key: Lighthouse bearer/hook tokens, AWS access key ids.
_SECRET_VALUE = re.compile(r"^(lh1\.|lhh1\.|Bearer\s)|^(AKIA|ASIA)[A-Z0-9]{16}$")
MAX_VALUE_CHARS = 8 * 1024


def csrf_for(token: str) -> str:
    """The value a signed-in page echoes in X-Lighthouse-CSRF: a digest of its session token.

    Bound to the session and computable only by someone holding the token, so no other site can
    produce it (it cannot read our cookie), and it reveals nothing of the token.
    """
    return hashlib.sha256(f"lighthouse-csrf\n{token}".encode()).hexdigest()


def session_cookie(token: str, max_age: int, secure: bool) -> str:
    """HttpOnly (no script reads it), SameSite=Strict (no other site's request carries it)."""
    attributes = f"{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max(0, max_age)}"
    return attributes + ("; Secure" if secure else "")


def cleared_cookie(secure: bool) -> str:
    return session_cookie("", 0, secure)


def cookie_token(cookie_header: str | None) -> str | None:
    if not cookie_header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie_header)
    except Exception:  # a malformed Cookie header is the same as none
        return None
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


def wants_secure_cookie(host: str | None, forwarded_proto: str | None) -> bool:
    """Secure everywhere but plain-http loopback (the embedded cloud), where browsers would drop it."""
    if (forwarded_proto or "").lower() == "https":
        return True
    name = (host or "").rsplit(":", 1)[0].strip("[]").lower()
    return name not in ("localhost", "127.0.0.1", "::1")


def redact(value: Any) -> Any:
    """`value` with every credential replaced by "[redacted]" (JSON strings are looked into)."""
    if isinstance(value, str):
        parsed = _json_or_none(value)
        if parsed is not None:
            return redact(parsed)
        if _SECRET_VALUE.match(value):
            return REDACTED
        return value if len(value) <= MAX_VALUE_CHARS else value[:MAX_VALUE_CHARS] + "…"
    if isinstance(value, Mapping):
        return {
            str(k): (REDACTED if _SECRET_KEY.search(str(k).replace(".$", "")) else redact(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def _json_or_none(text: str) -> Any:
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None


# ---- the graph of an ASL definition ------------------------------------------------------------


def graph(definition: Mapping[str, Any]) -> tuple[list[GraphNode], list[GraphEdge]]:
    """Every state (nested branches and map iterators included, with their parent) and every transition."""
    nodes: list[GraphNode] = []
    edges: list[GraphEdge] = []
    _add_states(definition, None, nodes, edges)
    return nodes, edges


def _add_states(
    machine: Mapping[str, Any], parent: str | None, nodes: list[GraphNode], edges: list[GraphEdge]
) -> list[str]:
    """Add `machine`'s states; answer the names of its terminal states (where control leaves it)."""
    terminals: list[str] = []
    for name, state in (machine.get("States") or {}).items():
        kind = str(state.get("Type", "Unknown"))
        waits = str(state.get("Resource", "")).endswith(".waitForTaskToken")
        nodes.append(GraphNode(id=name, type=kind, parent=parent, waits_for_task_token=waits))
        edges += [GraphEdge(source=name, target=target, label=label) for target, label in _transitions(state)]
        inner_ends = _add_inner_machines(name, state, nodes, edges)
        if state.get("Next") and inner_ends:
            edges += [GraphEdge(source=end, target=str(state["Next"]), label="joined") for end in inner_ends]
        if state.get("End") or kind in ("Succeed", "Fail"):
            terminals.append(name)
    return terminals


def _inner_machines(state: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], str]]:
    """A Parallel's branches and a Map's iterator, each with the label of the edge into it."""
    iterator = state.get("ItemProcessor") or state.get("Iterator")
    return [(branch, "branch") for branch in state.get("Branches") or []] + (
        [(iterator, "each item")] if iterator else []
    )


def _add_inner_machines(
    name: str, state: Mapping[str, Any], nodes: list[GraphNode], edges: list[GraphEdge]
) -> list[str]:
    ends: list[str] = []
    for inner, label in _inner_machines(state):
        edges.append(GraphEdge(source=name, target=str(inner.get("StartAt")), label=label))
        ends += _add_states(inner, name, nodes, edges)
    return ends


def _transitions(state: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    # A Parallel's or Map's Next is reached from its inner machines' ends ("joined"), not from itself.
    if state.get("Next") and not _inner_machines(state):
        yield str(state["Next"]), ""
    yield from ((str(choice.get("Next")), "choice") for choice in state.get("Choices") or [])
    if state.get("Default"):
        yield str(state["Default"]), "default"
    for catcher in state.get("Catch") or []:
        yield str(catcher.get("Next")), "catch " + ",".join(catcher.get("ErrorEquals") or [])


# ---- each state's status from the execution's history --------------------------------------


@dataclass
class _Tracked:
    status: StateStatus = "not_run"
    input: Any = None
    output: Any = None
    error: str | None = None
    open: bool = False
    errored: bool = False


@dataclass
class StatesFromHistory:
    """Replays an execution's history: which states ran, how they ended, what went in and out."""

    waits: frozenset[str]
    states: dict[str, _Tracked] = field(default_factory=dict)
    entered: list[str] = field(default_factory=list)  # open states, most recent last

    def apply(self, event: Mapping[str, Any]) -> None:
        kind = str(event.get("type", ""))
        if kind.endswith("StateEntered"):
            self._enter(event.get("stateEnteredEventDetails") or {})
        elif kind.endswith("StateExited"):
            self._exit(event.get("stateExitedEventDetails") or {})
        elif kind.startswith("Execution"):
            self._execution(kind, event)
        elif kind.endswith(("Failed", "TimedOut")) and self.entered:
            current = self.states[self.entered[-1]]
            current.errored, current.error = True, _error_of(event)
        elif kind.endswith(("Scheduled", "Started")) and self.entered:
            self.states[self.entered[-1]].errored = False  # a retry

    def _enter(self, details: Mapping[str, Any]) -> None:
        # Control moved on: a state that failed and is still open was caught by a Catch.
        for name in [n for n in self.entered if self.states[n].errored]:
            self.states[name].status, self.states[name].open = "caught", False
            self.entered.remove(name)
        name = str(details.get("name"))
        tracked = self.states.setdefault(name, _Tracked())
        tracked.status = "waiting" if name in self.waits else "running"
        tracked.input, tracked.open, tracked.errored = redact(details.get("input")), True, False
        if name in self.entered:
            self.entered.remove(name)
        self.entered.append(name)

    def _exit(self, details: Mapping[str, Any]) -> None:
        name = str(details.get("name"))
        tracked = self.states.setdefault(name, _Tracked())
        tracked.status = "caught" if tracked.errored else "succeeded"
        tracked.output, tracked.open = redact(details.get("output")), False
        if name in self.entered:
            self.entered.remove(name)

    def _execution(self, kind: str, event: Mapping[str, Any]) -> None:
        if kind in ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"):
            for name in self.entered:
                self.states[name].status = "failed"
                self.states[name].error = self.states[name].error or _error_of(event)
            self.entered.clear()

    def annotate(self, nodes: list[GraphNode]) -> list[GraphNode]:
        out = []
        for node in nodes:
            tracked = self.states.get(node.id)
            if tracked is None:
                out.append(node)
                continue
            out.append(
                node.model_copy(
                    update={
                        "status": tracked.status,
                        "input": tracked.input,
                        "output": tracked.output,
                        "error": tracked.error,
                    }
                )
            )
        return out


def state_statuses(nodes: list[GraphNode], events: Iterable[Mapping[str, Any]]) -> list[GraphNode]:
    replay = StatesFromHistory(waits=frozenset(n.id for n in nodes if n.waits_for_task_token))
    for event in events:
        replay.apply(event)
    return replay.annotate(nodes)


def _error_of(event: Mapping[str, Any]) -> str | None:
    for key, details in event.items():
        if key.endswith("EventDetails") and isinstance(details, Mapping) and ("error" in details or "cause" in details):
            error, cause = details.get("error") or "", str(redact(details.get("cause") or ""))[:500]
            return f"{error}: {cause}".strip(": ") or None
    return None


def history_entry(event: Mapping[str, Any]) -> HistoryEntry:
    details = {k: redact(v) for k, v in event.items() if k.endswith("EventDetails")}
    state = next((str(d.get("name")) for d in details.values() if isinstance(d, dict) and d.get("name")), None)
    at: Any = event.get("timestamp")
    return HistoryEntry(
        id=int(event.get("id", 0)),
        type=str(event.get("type", "")),
        at=at.timestamp() if hasattr(at, "timestamp") else float(at or 0),
        state=state,
        detail=next(iter(details.values()), None),
    )


# ---- what an execution means here -----------------------------------------------------------------

_PATHS: dict[ExecutionKind, tuple[str, str]] = {
    "elicitation": ("/elicitation/status/{id}", "#/inbox/{id}"),
    "expert_round": ("/validate/{id}", "#/gate/{id}"),
    "fleet_command": ("/fleet/commands/{id}", "#/fleet/commands/{id}"),
    "rollout": ("/fleet/rollouts/{id}", "#/fleet/rollouts/{id}"),
    "run": ("/runs/{id}", "#/work/runs/{id}"),
    "pipeline_task": ("/tasks/{id}", "#/work/tasks/{id}"),
}


def domain_link(kind: ExecutionKind, execution_name: str) -> DomainLink:
    """Executions are named after the object they run for (an elicitation id, a run id, ...)."""
    paths = _PATHS.get(kind)
    return DomainLink(
        kind=kind,
        object_id=execution_name,
        api_path=paths[0].format(id=execution_name) if paths else None,
        console_path=paths[1].format(id=execution_name) if paths else None,
    )


def authorization(headers: Mapping[str, str], csrf_exempt: bool = False) -> str | None:
    """The caller's credentials as an Authorization value: the header, else the console's cookie.

    A cookie counts only with the session's CSRF value in X-Lighthouse-CSRF, which a page of another
    site cannot know; SameSite=Strict already keeps the cookie off other sites' requests, and this
    holds even in a browser that ignores SameSite. `csrf_exempt` is for GET /console/session alone,
    which reads, changes nothing, and is how a reloaded page learns the value.
    """
    header = headers.get("authorization")
    if header:
        return header
    token = cookie_token(headers.get("cookie"))
    if token is None:
        return None
    if not csrf_exempt:
        echoed = headers.get(CSRF_HEADER) or ""
        if not hmac.compare_digest(echoed.encode(), csrf_for(token).encode()):
            raise Forbidden(
                "a request with the console's session cookie must carry its CSRF value in X-Lighthouse-CSRF"
            )
    return f"Bearer {token}"
