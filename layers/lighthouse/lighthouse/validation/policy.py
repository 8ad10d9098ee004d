"""The policy layer: Cedar policies (evaluated by `cedarpy`) over the facts the rule layer found.

principal = the agent (`Lighthouse::Agent`, in its `Lighthouse::Role`), action = the tool
(`Lighthouse::Action::"Bash"`, in a group: shell, read, write, network, other), resource = the
command class (`Lighthouse::Command`) or the resolved file (`Lighthouse::File`), context = the
request's facts. Allow approves, a matching forbid blocks, no matching permit escalates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import cedarpy

from lighthouse.errors import ValidationFailed
from lighthouse.validation.policy_worker import run_policy_worker
from lighthouse.validation.rules import READ_TOOLS, SEARCH_TOOLS, WRITE_TOOLS, Facts

MAX_POLICY_BYTES = 64 * 1024
MAX_POLICY_NESTING = 32
ACTION_GROUPS = {
    "Bash": "shell",
    **{tool: "read" for tool in (*READ_TOOLS, *SEARCH_TOOLS)},
    **{tool: "write" for tool in WRITE_TOOLS},
    "WebFetch": "network",
    "WebSearch": "network",
}


def default_policies() -> str:
    return resources.files("lighthouse.validation").joinpath("policies/default.cedar").read_text()


def policy_schema() -> str:
    return resources.files("lighthouse.validation").joinpath("policies/schema.cedarschema").read_text()


@dataclass(frozen=True)
class PolicyVerdict:
    outcome: Literal["allow", "forbid", "no_permit", "error"]
    policies: tuple[str, ...] = ()
    error: str | None = None


class PolicyEngine:
    """One validated, parsed policy set. Build a new engine to change policies.

    Texts reach an engine only after `check_policies` accepted them in a worker process (or they
    are the shipped defaults), so parsing here, in the serving process, is safe.
    """

    def __init__(self, text: str, version: int = 0, schema: str | None = None) -> None:
        check_shape(text)
        _parse_and_validate(text, schema)
        self.text = text
        self.version = version
        self._policies: cedarpy.PolicySet | None = cedarpy.PolicySet.from_str(text)
        self._broken: str | None = None

    @classmethod
    def load(cls, text: str, version: int) -> PolicyEngine:
        """An engine for stored policies; if they no longer validate, one that reports the error on
        every evaluation (the gate then falls back to the rule layer and never approves)."""
        try:
            return cls(text, version)
        except ValidationFailed as error:
            engine = cls.__new__(cls)
            engine.text, engine.version, engine._policies = text, version, None
            engine._broken = f"stored policies v{version} are invalid: {error.message} {error.details}"
            return engine

    def evaluate(self, agent_id: str, role: str, facts: Facts) -> PolicyVerdict:
        if self._policies is None:
            return PolicyVerdict("error", error=self._broken)
        try:
            request, entities = _request(agent_id, role, facts)
            result = cedarpy.is_authorized(request, self._policies, entities)
        except Exception as error:
            return PolicyVerdict("error", error=f"{type(error).__name__}: {error}")
        diagnostics = result.diagnostics
        if diagnostics.errors:
            return PolicyVerdict("error", error="; ".join(str(e) for e in diagnostics.errors))
        names = diagnostics.id_annotations_by_reason
        policies = tuple(names.get(reason, reason) for reason in diagnostics.reasons)
        if result.allowed:
            return PolicyVerdict("allow", policies)
        return PolicyVerdict("forbid" if policies else "no_permit", policies)


def check_shape(text: str) -> None:
    """Limits checked before any parser sees the text: size, and bracket nesting.

    The Cedar parser recurses once per nesting level and a deep enough text overflows the native
    stack (1,000 nested parentheses kill the process with SIGSEGV), which no `except` can catch.
    """
    if not text.strip():
        raise ValidationFailed("policies are empty")
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise ValidationFailed(f"policies are larger than {MAX_POLICY_BYTES} bytes")
    depth, line = _nesting(text)
    if depth > MAX_POLICY_NESTING:
        raise ValidationFailed(
            f"policies nest brackets {depth} levels deep (line {line}); the limit is {MAX_POLICY_NESTING}",
            {"errors": [f"line {line}: brackets nested deeper than {MAX_POLICY_NESTING} levels"]},
        )


# Strings (with escapes) and line comments, whose brackets do not count; unambiguous, so linear.
_NOT_CODE = re.compile(r'"(?:[^"\\\n]|\\.)*"|//[^\n]*')
_BRACKET = re.compile(r"[(\[{)\]}\n]")


def _nesting(text: str) -> tuple[int, int]:
    """Deepest bracket nesting outside strings and comments, and the line where it is reached."""
    code = _NOT_CODE.sub(lambda match: "\n" * match.group().count("\n"), text)
    deepest, depth, line, deepest_line = 0, 0, 1, 1
    for match in _BRACKET.finditer(code):
        char = match.group()
        if char == "\n":
            line += 1
        elif char in "([{":
            depth += 1
            if depth > deepest:
                deepest, deepest_line = depth, line
        else:
            depth -= 1
    return deepest, deepest_line


def check_policies(text: str, schema: str | None = None) -> None:
    """Accept a policy text from a user: limits here, then parse and validate in a worker process
    with a time and memory limit, so a parser crash or hang costs the worker, not the platform."""
    check_shape(text)
    problems = run_policy_worker(text, schema or policy_schema())
    if problems is not None:
        raise problems


def _parse_and_validate(text: str, schema: str | None = None) -> None:
    """Parse and validate against the Cedar schema; ValidationFailed lists every problem."""
    try:
        cedarpy.PolicySet.from_str(text)
    except ValueError as error:
        raise ValidationFailed("policies do not parse as Cedar", {"errors": [str(error)]}) from error
    result = cedarpy.validate_policies(text, schema or policy_schema())
    if not result.validation_passed:
        errors = sorted({str(error) for error in result.errors})
        raise ValidationFailed("policies do not validate against the Cedar schema", {"errors": errors})


def _request(agent_id: str, role: str, facts: Facts) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    analysis = facts.analysis
    tool = analysis.tool_name
    group = ACTION_GROUPS.get(tool, "other")
    action_id = tool if tool in ACTION_GROUPS else "tool"
    if group == "shell":
        resource = {"type": "Lighthouse::Command", "id": analysis.command_class}
        resource_attrs: dict[str, Any] = {"class": analysis.command_class}
    elif group in ("read", "write"):
        paths = facts.resolved_writes or facts.resolved_reads
        resource = {"type": "Lighthouse::File", "id": paths[0] if paths else facts.cwd}
        resource_attrs = {"within_roots": facts.reads_within_roots and facts.writes_within_roots}
    else:
        resource = {"type": "Lighthouse::Tool", "id": tool}
        resource_attrs = {}
    principal = {"type": "Lighthouse::Agent", "id": agent_id}
    entities: list[dict[str, Any]] = [
        {"uid": principal, "attrs": {"role": role}, "parents": [{"type": "Lighthouse::Role", "id": role}]},
        {"uid": {"type": "Lighthouse::Role", "id": role}, "attrs": {}, "parents": []},
        {
            "uid": {"type": "Lighthouse::Action", "id": action_id},
            "attrs": {},
            "parents": [{"type": "Lighthouse::Action", "id": group}],
        },
        {"uid": {"type": "Lighthouse::Action", "id": group}, "attrs": {}, "parents": []},
        {"uid": resource, "attrs": resource_attrs, "parents": []},
    ]
    request = {
        "principal": principal,
        "action": {"type": "Lighthouse::Action", "id": action_id},
        "resource": resource,
        "context": context_of(facts),
    }
    return request, entities


def context_of(facts: Facts) -> dict[str, Any]:
    analysis = facts.analysis
    command_class = analysis.command_class
    return {
        "tool": analysis.tool_name,
        "command_class": command_class,
        "dangerous": bool(analysis.blocking),
        "read_only": command_class == "read_only",
        "privileged": command_class == "privileged",
        "network": command_class == "network",
        "credential_access": facts.credential_access,
        "reads_within_roots": facts.reads_within_roots,
        "writes_within_roots": facts.writes_within_roots,
        "unparseable": analysis.parse_error is not None,
        "everyday": analysis.everyday,
        "push_branches": list(analysis.push_branches),
        "matched_rules": sorted({f.rule for f in analysis.findings}),
    }
