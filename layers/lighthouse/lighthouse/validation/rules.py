"""The rule layer: what a tool call does (its class, the paths it touches, dangerous patterns).

`analyze` is structural and cacheable: the same tool input always gives the same analysis.
`resolve` then checks the paths with the operating system (realpath: symlinks, `..`) on every
call, so a symlink swapped after a cached analysis cannot carry a write out of the allowed roots.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lighthouse.errors import ValidationFailed
from lighthouse.validation import catalog, shell
from lighthouse.validation.classes import classify
from lighthouse.validation.detectors import PIPE_TO_SHELL_FINDING, Scan, inspect
from lighthouse.validation.vocabulary import (
    CREDENTIAL_PATH,
    FORK_BOMB,
    MAX_COMMAND_CHARS,
    NETWORK_COMMANDS,
    NETWORK_TOOLS,
    PIPE_TO_SHELL,
    READ_TOOLS,
    SEARCH_TOOLS,
    WRITE_TOOLS,
    CommandClass,
    Finding,
    expand,
)
from lighthouse.validation.where import Verdict, Where

__all__ = ["READ_TOOLS", "SEARCH_TOOLS", "WRITE_TOOLS", "Analysis", "Facts", "Finding", "analyze", "resolve"]


@dataclass(frozen=True)
class Analysis:
    """What the call does, from its text alone."""

    tool_name: str
    command_class: CommandClass
    findings: tuple[Finding, ...] = ()
    read_paths: tuple[str, ...] = ()
    write_paths: tuple[str, ...] = ()
    parse_error: str | None = None
    known_tool: bool = True
    everyday: bool = False  # made only of everyday work (catalog.EVERYDAY), with nothing found against it
    push_branches: tuple[str, ...] = ()

    @property
    def blocking(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "block")


@dataclass(frozen=True)
class Facts:
    """The analysis plus the paths as the operating system resolves them against the allowed roots."""

    analysis: Analysis
    cwd: str
    resolved_reads: tuple[str, ...]
    resolved_writes: tuple[str, ...]
    reads_within_roots: bool
    writes_within_roots: bool
    credential_access: bool
    outside_roots: tuple[str, ...] = field(default=())

    @property
    def matched_rules(self) -> list[str]:
        rules = [f.rule for f in self.analysis.findings]
        if self.outside_roots:
            rules.append("path_outside_allowed_roots")
        if self.credential_access and "credential_access" not in rules:
            rules.append("credential_access")
        if self.analysis.command_class == "read_only" and self.reads_within_roots and not rules:
            rules.append("read_only_within_roots")
        return rules


def analyze(tool_name: str, tool_input: dict[str, Any], cwd: str, home: str, where: Where | None = None) -> Analysis:
    """Classify one tool call. Raises ValidationFailed when a known tool lacks its required input."""
    if tool_name == "Bash":
        return analyze_command(_bash_command(tool_input), cwd, home, where)
    if tool_name in READ_TOOLS:
        return Analysis(tool_name, "read_only", read_paths=(_path_of(tool_name, tool_input, READ_TOOLS),))
    if tool_name in WRITE_TOOLS:
        return Analysis(tool_name, "mutating", write_paths=(_path_of(tool_name, tool_input, WRITE_TOOLS),))
    if tool_name in SEARCH_TOOLS:
        path = tool_input.get(SEARCH_TOOLS[tool_name]) or cwd
        if not isinstance(path, str) or "\x00" in path:
            raise ValidationFailed(f"{tool_name}: tool_input.path must be a string without NUL")
        return Analysis(tool_name, "read_only", read_paths=(path,))
    if tool_name in NETWORK_TOOLS:
        return Analysis(
            tool_name, "network", findings=(Finding("network_access", f"{tool_name} reaches the network", "risk"),)
        )
    return Analysis(tool_name, "unknown", known_tool=False)


def _bash_command(tool_input: dict[str, Any]) -> str:
    command = tool_input.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ValidationFailed("Bash needs tool_input.command, a non-empty string", {"path": "tool_input.command"})
    if len(command) > MAX_COMMAND_CHARS:
        raise ValidationFailed(f"tool_input.command is longer than {MAX_COMMAND_CHARS} characters")
    if "\x00" in command:  # no shell passes NUL to a program, and no path can hold one
        raise ValidationFailed("tool_input.command contains a NUL character", {"path": "tool_input.command"})
    return command


def _path_of(tool_name: str, tool_input: dict[str, Any], tools: dict[str, str]) -> str:
    key = tools[tool_name]
    path = tool_input.get(key)
    if not isinstance(path, str) or not path or "\x00" in path:
        message = f"{tool_name} needs tool_input.{key}, a path (without NUL)"
        raise ValidationFailed(message, {"path": f"tool_input.{key}"})
    return path


def analyze_command(command: str, cwd: str, home: str, where: Where | None = None) -> Analysis:
    where = where or Where(cwd, home, roots=(cwd,))
    parsed = shell.parse(command)
    findings: list[Finding] = []
    reads: list[str] = []
    writes: list[str] = []
    classes = {inspect(Scan(simple, cwd, home, findings, reads, writes)) for simple in parsed.commands}
    verdicts = [classify(simple, where) for simple in parsed.commands]
    findings += _deny_findings(verdicts)
    findings += _whole_command_findings(parsed, findings)
    findings += _credential_findings(parsed, [*reads, *writes, *_words(parsed.commands)], home)
    if parsed.parse_error:
        findings.append(Finding("unparseable_command", f"the command does not parse: {parsed.parse_error}", "risk"))
    findings = _unique(findings)
    return Analysis(
        "Bash",
        _overall_class(classes, findings),
        findings=tuple(findings),
        read_paths=tuple(dict.fromkeys(reads)),
        write_paths=tuple(dict.fromkeys(writes)),
        parse_error=parsed.parse_error,
        everyday=_everyday(verdicts, findings, parsed),
        push_branches=tuple(dict.fromkeys(b for v in verdicts for b in v.push_branches)),
    )


def _deny_findings(verdicts: Sequence[Verdict]) -> list[Finding]:
    return [Finding(rule, catalog.describe(rule, matched), "deny") for v in verdicts for rule, matched in v.denies]


def _everyday(verdicts: Sequence[Verdict], findings: Sequence[Finding], parsed: shell.ParsedCommand) -> bool:
    """Every simple command is everyday work, and nothing was found against the call."""
    against = [f for f in findings if f.rule not in _EVERYDAY_RISKS]
    return bool(verdicts) and all(v.everyday for v in verdicts) and not against and not parsed.parse_error


# Risks the everyday classes have already weighed (a recursive delete they only call everyday inside the roots).
_EVERYDAY_RISKS = frozenset({"recursive_delete"})


def _whole_command_findings(parsed: shell.ParsedCommand, found: list[Finding]) -> list[Finding]:
    """Patterns that span simple commands: a fork bomb, a download piped into a shell."""
    findings = []
    if FORK_BOMB.search(parsed.normalized):
        message = "a function that pipes into itself in the background: a fork bomb"
        findings.append(Finding("fork_bomb", message, "block"))
    if PIPE_TO_SHELL.search(parsed.normalized) and PIPE_TO_SHELL_FINDING not in found:
        findings.append(PIPE_TO_SHELL_FINDING)
    return findings


def _credential_findings(parsed: shell.ParsedCommand, words: list[str], home: str) -> list[Finding]:
    """Credentials read, or sent over the network (from a credential file, or the environment)."""
    networked = bool({c.name for c in parsed.commands} & NETWORK_COMMANDS)
    findings = []
    credential_paths = [p for p in words if CREDENTIAL_PATH.search(expand(p, home))]
    if credential_paths:
        findings.append(_credential_finding(credential_paths[0], networked))
    piped_environment = {"env", "printenv"} & {u for c in parsed.commands for u in c.upstream}
    if networked and piped_environment:
        findings.append(Finding("credential_exfiltration", "the environment piped to a network command", "block"))
    return findings


def _credential_finding(path: str, networked: bool) -> Finding:
    if networked:
        return Finding("credential_exfiltration", f"credentials ({path}) sent over the network", "block")
    return Finding("credential_access", f"reads credentials ({path})", "risk")


def _overall_class(classes: Iterable[str], findings: Sequence[Finding]) -> CommandClass:
    if any(f.severity in ("block", "deny") for f in findings):
        return "dangerous"
    if any(f.rule == "unparseable_command" for f in findings):
        return "unknown"
    present = set(classes)
    ranked: tuple[CommandClass, ...] = ("privileged", "network", "unknown", "mutating")
    for command_class in ranked:
        if command_class in present:
            return command_class
    return "read_only" if present else "unknown"


def _unique(findings: list[Finding]) -> list[Finding]:
    return list(dict.fromkeys(findings))


def _words(commands: Sequence[shell.SimpleCommand]) -> list[str]:
    return [arg for c in commands for arg in c.args if not arg.startswith("-")]


def resolve(
    analysis: Analysis,
    cwd: str,
    roots: Sequence[str],
    home: str,
    tmpdir: str = "/tmp",  # noqa: S108 - $TMPDIR's default
) -> Facts:
    """Resolve every path with the operating system and check it against the allowed roots."""
    real_roots = [os.path.realpath(root) for root in roots]
    where = Where(cwd, home, tmpdir)
    reads, writes = _real(analysis.read_paths, cwd, where), _real(analysis.write_paths, cwd, where)
    real_cwd = os.path.realpath(cwd)
    cwd_inside = _within(real_cwd, real_roots)
    outside = tuple(p for p in (*reads, *writes) if not _within(p, real_roots))
    return Facts(
        analysis=analysis,
        cwd=real_cwd,
        resolved_reads=reads,
        resolved_writes=writes,
        reads_within_roots=cwd_inside and not set(reads) & set(outside),
        # A command run outside the roots may write there implicitly (build output), unless it only reads.
        writes_within_roots=(cwd_inside or analysis.command_class == "read_only") and not set(writes) & set(outside),
        credential_access=_touches_credentials(analysis, (*reads, *writes)),
        outside_roots=outside,
    )


def _real(paths: Sequence[str], cwd: str, where: Where) -> tuple[str, ...]:
    # No lexical normalisation first: `link/..` is the parent of the link's target, not `.`.
    return tuple(os.path.realpath(posixpath.join(cwd, where.expand(p))) for p in paths)


def _touches_credentials(analysis: Analysis, resolved: tuple[str, ...]) -> bool:
    if any(f.rule in ("credential_access", "credential_exfiltration") for f in analysis.findings):
        return True
    return any(CREDENTIAL_PATH.search(p) for p in (*resolved, *analysis.read_paths, *analysis.write_paths))


def _within(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)
