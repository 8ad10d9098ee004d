"""One detector per class of danger in a simple shell command.

A simple command (a name, its arguments and redirections, from shell.py) goes to the first
detector whose `applies` says it is its kind (deletion, permissions, raw disk writes, formatting,
power, history wiping, file writes, network, git, interpreters, read-only tools, installers), in
that order; the detector records its findings and the paths read and written, and names the
command's class. Redirections and privilege are checked for every command, whatever its kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from lighthouse.validation import shell
from lighthouse.validation.vocabulary import (
    DOWNLOADERS,
    FORMATTERS,
    HARMLESS_DEVICES,
    MUTATING_COMMANDS,
    NETWORK_COMMANDS,
    NETWORK_GIT,
    PATTERN_FIRST,
    POWER,
    READ_ONLY_COMMANDS,
    READ_ONLY_GIT,
    WRITE_REDIRECTS,
    Finding,
    Severity,
    history_check,
    is_device,
    is_recursive_flag,
    is_root_or_home,
    is_world_writable_mode,
)

PIPE_TO_SHELL_FINDING = Finding("download_piped_to_shell", "a download piped into a shell or interpreter", "block")
_HISTORY_VARIABLE = re.compile(r"^(histfile|histsize|histfilesize|savehist)\b")
_FILE_WRITERS = frozenset({"tee", "cp", "mv", "install", "ln", "touch", "mkdir", "chown", "chgrp"})
_DELETERS = frozenset({"rm", "shred", "unlink", "rmdir"})
_INSTALLERS = frozenset({"pip", "pip3", "npm", "yarn", "pnpm", "apt", "apt-get"})
# Words that are data, not paths: echo's text, a pattern, a script.
_ALL_DATA = frozenset({"echo", "printf", "git", "test", "[", "seq", "date"})


@dataclass
class Scan:
    """One simple command under inspection, and what the inspection has found so far."""

    command: shell.SimpleCommand
    cwd: str
    home: str
    findings: list[Finding] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.command.name

    @property
    def args(self) -> list[str]:
        return list(self.command.args)

    @cached_property
    def options(self) -> list[str]:
        return [a for a in self.command.args if a.startswith("-")]

    @cached_property
    def operands(self) -> list[str]:
        return [a for a in self.command.args if not a.startswith("-")]

    @cached_property
    def lowered(self) -> list[str]:
        return [a.lower() for a in self.command.args]

    def flag(self, rule: str, reason: str, severity: Severity) -> None:
        self.findings.append(Finding(rule, reason, severity))

    def written(self, target: str, writer: str | None = None) -> None:
        """A file the command writes: a device is refused, a history file or log is flagged."""
        if is_device(target):
            self.flag("write_to_device", f"{writer or self.name} writes to the device {target}", "block")
        else:
            self.writes.append(target)
            history_check(target, self.home, self.findings)


@dataclass(frozen=True)
class Detector:
    applies: Callable[[Scan], bool]
    inspect: Callable[[Scan], str]  # records findings and paths; returns the command's class


def _redirects(scan: Scan) -> None:
    for operator, target in scan.command.redirects:
        if operator in WRITE_REDIRECTS or operator.startswith(">"):
            if target.startswith("&") or target.isdigit() or target in HARMLESS_DEVICES:
                continue
            if is_device(target):
                scan.flag("write_to_device", f"writes to the device {target}", "block")
            else:
                scan.written(target)
        elif operator == "<":
            scan.reads.append(target)


def _writes_to_files(scan: Scan) -> bool:
    return any(
        op in WRITE_REDIRECTS or op.startswith(">")
        for op, target in scan.command.redirects
        if target not in HARMLESS_DEVICES
    )


# ---- the detectors, in the order they are tried -----------------------------------------------------


def _is_deletion(scan: Scan) -> bool:
    return scan.name in _DELETERS or (scan.name == "find" and "-delete" in scan.lowered)


def _deletion(scan: Scan) -> str:
    finding = scan.name == "find"
    recursive = finding or any(is_recursive_flag(o) for o in scan.options)
    targets = scan.operands[:1] if finding else scan.operands
    for target in targets or ([scan.cwd] if finding else []):
        _deleted(scan, target, recursive)
    if "--no-preserve-root" in scan.lowered:
        scan.flag("recursive_delete_root_or_home", "rm --no-preserve-root", "block")
    if not finding:
        scan.writes.extend(targets)
    if recursive:
        scan.flag("recursive_delete", f"{scan.name} deletes recursively", "risk")
    return "mutating"


def _deleted(scan: Scan, target: str, recursive: bool) -> None:
    if recursive and is_root_or_home(target, scan.cwd, scan.home):
        scan.flag("recursive_delete_root_or_home", f"recursively deletes {target} (root or home)", "block")
    history_check(target, scan.home, scan.findings)


def _permissions(scan: Scan) -> str:
    if any(is_world_writable_mode(a) for a in scan.operands):
        scan.flag("chmod_777", "makes files world-writable (chmod 777)", "block")
    scan.writes.extend(scan.operands[1:])
    return "mutating"


def _raw_copy(scan: Scan) -> str:
    for arg in scan.args:
        key, separator, value = arg.partition("=")
        if not separator:
            continue
        if key.lower() == "of" and is_device(value):
            scan.flag("dd_to_device", f"dd writes to the device {value}", "block")
        elif key.lower() == "of":
            scan.writes.append(value)
        elif key.lower() == "if":
            scan.reads.append(value)
    return "mutating"


def _format(scan: Scan) -> str:
    scan.flag("filesystem_format", f"{scan.name} formats or repartitions a disk", "block")
    return "dangerous"


def _is_power(scan: Scan) -> bool:
    return scan.name in POWER or (scan.name == "init" and scan.operands[:1] in (["0"], ["6"]))


def _power(scan: Scan) -> str:
    scan.flag("system_shutdown", f"{scan.name} stops the machine", "block")
    return "dangerous"


def _is_history_wiping(scan: Scan) -> bool:
    if scan.name == "history":
        return any(o in ("-c", "-w", "-d") for o in scan.options)
    if scan.name in ("unset", "export", "set"):
        return any(_HISTORY_VARIABLE.match(a.lower()) or a == "history" for a in scan.args)
    return scan.name == "journalctl" and any(o.startswith("--vacuum") or o == "--rotate" for o in scan.lowered)


def _history_wiping(scan: Scan) -> str:
    reasons = {"history": "clears the shell history", "journalctl": "deletes the system journal"}
    scan.flag("history_or_log_wiping", reasons.get(scan.name, "disables the shell history"), "block")
    return "mutating"


def _truncate(scan: Scan) -> str:
    for target in scan.operands:
        if not target.isdigit():
            scan.writes.append(target)
            history_check(target, scan.home, scan.findings)
    return "mutating"


def _file_writer(scan: Scan) -> str:
    operands = scan.operands
    sources: list[str] = []
    if scan.name in ("tee", "touch", "mkdir"):
        targets = operands
    elif scan.name in ("chown", "chgrp"):
        targets = operands[1:]
    else:
        targets, sources = operands[-1:], operands[:-1]
    for target in targets:
        scan.written(target)
    scan.reads.extend(sources)
    return "mutating"


def _network(scan: Scan) -> str:
    if scan.command.upstream and scan.name in ("nc", "ncat", "netcat", "curl", "socat"):
        scan.flag("network_upload", f"pipes local data into {scan.name}", "risk")
    if scan.name == "curl":
        uploads = [arg.split("@", 1)[1] for arg in scan.args if "@" in arg]
        scan.reads.extend(path for path in uploads if path not in ("", "-"))
    return "network"


def _git(scan: Scan) -> str:
    sub = scan.operands[0].lower() if scan.operands else ""
    if sub in NETWORK_GIT:
        if sub == "push" and any(o in ("-f", "--force") for o in scan.options):
            scan.flag("force_push", "rewrites a remote branch (git push --force)", "risk")
        return "network"
    return "read_only" if sub in READ_ONLY_GIT or not sub else "mutating"


def _interpreter(scan: Scan) -> str:
    if scan.command.upstream and set(scan.command.upstream) & DOWNLOADERS:
        scan.findings.append(PIPE_TO_SHELL_FINDING)
    return "unknown"


_FIND_ACTIONS = frozenset({"-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fls"})
# Options that make a read-only tool write (in place, to an output file) or run other commands.
_WRITING_OPTIONS: dict[str, Callable[[list[str]], bool]] = {
    "find": lambda args: any(a.lower() in _FIND_ACTIONS for a in args),
    "sed": lambda args: any(a.startswith(("-i", "--in-place")) for a in args),
    "sort": lambda args: any(a.startswith(("-o", "--output")) for a in args),
}


def _read_only_class(scan: Scan) -> str:
    """A read-only tool run with an option that writes or runs something is not read-only."""
    writes = _WRITING_OPTIONS.get(scan.name)
    if writes is not None and writes(scan.args):
        return "mutating"
    if scan.name == "awk" and any("system" in a or "print >" in a or '">' in a for a in scan.lowered):
        return "unknown"
    return "read_only"


def _read_only(scan: Scan) -> str:
    command_class = _read_only_class(scan)
    skip = len(scan.operands) if scan.name in _ALL_DATA else 1 if scan.name in PATTERN_FIRST else 0
    paths = [a for a in scan.operands[skip:] if a not in (":", "{}", ";", "+")]
    (scan.reads if command_class == "read_only" else scan.writes).extend(paths)
    return command_class


def _installer_or_mutating(scan: Scan) -> str:
    return "network" if scan.name in _INSTALLERS else "mutating"


def _named(*names: str) -> Callable[[Scan], bool]:
    return lambda scan: scan.name in names


DETECTORS = (
    Detector(_is_deletion, _deletion),
    Detector(_named("chmod"), _permissions),
    Detector(_named("dd"), _raw_copy),
    Detector(lambda scan: scan.name in FORMATTERS or scan.name.startswith("mkfs"), _format),
    Detector(_is_power, _power),
    Detector(_is_history_wiping, _history_wiping),
    Detector(_named("truncate"), _truncate),
    Detector(_named(*_FILE_WRITERS), _file_writer),
    Detector(_named(*NETWORK_COMMANDS), _network),
    Detector(_named("git"), _git),
    Detector(_named(*shell.INTERPRETERS), _interpreter),
    Detector(_named(*READ_ONLY_COMMANDS), _read_only),
    Detector(_named(*MUTATING_COMMANDS), _installer_or_mutating),
)


def inspect(scan: Scan) -> str:
    """Record one simple command's findings and paths in `scan`; return its class."""
    _redirects(scan)
    if scan.command.privileged:
        scan.flag("privilege_escalation", f"runs {scan.name} with elevated privileges", "risk")
    detector = next((d for d in DETECTORS if d.applies(scan)), None)
    command_class = detector.inspect(scan) if detector else "unknown"
    if command_class == "read_only" and _writes_to_files(scan):
        command_class = "mutating"
    return "privileged" if scan.command.privileged else command_class
