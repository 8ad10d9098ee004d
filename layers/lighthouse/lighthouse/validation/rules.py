"""The rule layer: what a tool call does (its class, the paths it touches, dangerous patterns).

`analyze` is structural and cacheable: the same tool input always gives the same analysis.
`resolve` then checks the paths with the operating system (realpath: symlinks, `..`) on every
call, so a symlink swapped after a cached analysis cannot carry a write out of the allowed roots.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from lighthouse.errors import ValidationFailed
from lighthouse.validation import shell

CommandClass = Literal["read_only", "mutating", "network", "privileged", "dangerous", "unknown"]
Severity = Literal["block", "risk"]

READ_TOOLS = {"Read": "file_path", "NotebookRead": "notebook_path"}
SEARCH_TOOLS = {"Glob": "path", "Grep": "path", "LS": "path"}
WRITE_TOOLS = {"Write": "file_path", "Edit": "file_path", "MultiEdit": "file_path", "NotebookEdit": "notebook_path"}
NETWORK_TOOLS = frozenset({"WebFetch", "WebSearch"})

READ_ONLY_COMMANDS = frozenset(
    [
        "ls",
        "cat",
        "head",
        "tail",
        "less",
        "more",
        "grep",
        "egrep",
        "fgrep",
        "rg",
        "ag",
        "pwd",
        "echo",
        "printf",
        "wc",
        "sort",
        "uniq",
        "diff",
        "cmp",
        "file",
        "stat",
        "du",
        "df",
        "which",
        "whereis",
        "type",
        "whoami",
        "id",
        "date",
        "uname",
        "tree",
        "cut",
        "tr",
        "basename",
        "dirname",
        "realpath",
        "readlink",
        "ps",
        "hostname",
        "true",
        "false",
        "test",
        "[",
        "nl",
        "column",
        "jq",
        "md5sum",
        "sha1sum",
        "sha256sum",
        "cksum",
        "comm",
        "seq",
        ":",
        "find",
        "sed",
        "git",
        "awk",
    ]
)
READ_ONLY_GIT = frozenset({"status", "log", "diff", "show", "rev-parse", "ls-files", "blame", "describe", "shortlog"})
NETWORK_GIT = frozenset({"push", "pull", "fetch", "clone", "ls-remote"})
NETWORK_COMMANDS = frozenset(
    {"curl", "wget", "nc", "ncat", "netcat", "ssh", "scp", "sftp", "ftp", "telnet", "socat", "rsync", "http"}
)
DOWNLOADERS = frozenset({"curl", "wget", "fetch", "http"})
MUTATING_COMMANDS = frozenset(
    [
        "rm",
        "rmdir",
        "mv",
        "cp",
        "mkdir",
        "touch",
        "ln",
        "chmod",
        "chown",
        "chgrp",
        "truncate",
        "install",
        "tee",
        "patch",
        "kill",
        "killall",
        "pkill",
        "pip",
        "pip3",
        "npm",
        "yarn",
        "pnpm",
        "apt",
        "apt-get",
        "yum",
        "dnf",
        "brew",
        "docker",
        "kubectl",
        "make",
        "shred",
        "unlink",
    ]
)
PATTERN_FIRST = frozenset({"grep", "egrep", "fgrep", "rg", "ag", "sed", "awk", "jq", "tr", "cut"})
FORMATTERS = frozenset({"mkfs", "mke2fs", "mkswap", "fdisk", "sfdisk", "cfdisk", "parted", "wipefs", "format"})
POWER = frozenset({"shutdown", "reboot", "halt", "poweroff"})
HARMLESS_DEVICES = ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/zero", "/dev/fd/")
WRITE_REDIRECTS = frozenset({">", ">>", ">|", "<>", "&>", ">&"})
HISTORY_FILES = re.compile(r"(^|/)\.(bash|zsh|sh|python|node_repl|mysql|psql|lesshst)_?history$|^/var/log(/|$)")
CREDENTIAL_PATH = re.compile(
    r"(^|/)(\.ssh(/|$)|\.aws/(credentials|config)$|\.netrc$|\.git-credentials$|\.docker/config\.json$|"
    r"\.kube/config$|\.gnupg(/|$)|\.npmrc$|\.pypirc$|\.env(\.[\w.-]+)?$|id_(rsa|dsa|ecdsa|ed25519)(\.pub)?$|"
    r"[^/]*\.(pem|key|p12|pfx)$)|^/etc/(shadow|gshadow|sudoers)"
)
FORK_BOMB = re.compile(r"(?P<f>[^\s(){}|;&]+)\s*\(\s*\)\s*\{[^}]*(?P=f)\s*\|\s*&?\s*(?P=f)")
PIPE_TO_SHELL = re.compile(
    r"\b(curl|wget)\b[^|;&]*\|\s*(sudo\s+)?(\S*/)?(sh|bash|zsh|dash|ksh|python3?|perl|ruby)\b"
    r"|\b(sh|bash|zsh|source|\.)\s+<\(\s*(curl|wget)\b|-c\s+[\"']?\$\(\s*(curl|wget)\b"
)
MAX_COMMAND_CHARS = 16_384


@dataclass(frozen=True)
class Finding:
    rule: str
    reason: str
    severity: Severity


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


def analyze(tool_name: str, tool_input: dict[str, Any], cwd: str, home: str) -> Analysis:
    """Classify one tool call. Raises ValidationFailed when a known tool lacks its required input."""
    if tool_name == "Bash":
        command = tool_input.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ValidationFailed("Bash needs tool_input.command, a non-empty string", {"path": "tool_input.command"})
        if len(command) > MAX_COMMAND_CHARS:
            raise ValidationFailed(f"tool_input.command is longer than {MAX_COMMAND_CHARS} characters")
        return analyze_command(command, cwd, home)
    for tools, command_class in ((READ_TOOLS, "read_only"), (WRITE_TOOLS, "mutating")):
        if tool_name in tools:
            key = tools[tool_name]
            path = tool_input.get(key)
            if not isinstance(path, str) or not path:
                raise ValidationFailed(f"{tool_name} needs tool_input.{key}, a path", {"path": f"tool_input.{key}"})
            reads, writes = ((path,), ()) if command_class == "read_only" else ((), (path,))
            return Analysis(tool_name, command_class, read_paths=reads, write_paths=writes)  # type: ignore[arg-type]
    if tool_name in SEARCH_TOOLS:
        path = tool_input.get(SEARCH_TOOLS[tool_name]) or cwd
        if not isinstance(path, str):
            raise ValidationFailed(f"{tool_name}: tool_input.path must be a string")
        return Analysis(tool_name, "read_only", read_paths=(path,))
    if tool_name in NETWORK_TOOLS:
        return Analysis(
            tool_name, "network", findings=(Finding("network_access", f"{tool_name} reaches the network", "risk"),)
        )
    return Analysis(tool_name, "unknown", known_tool=False)


def analyze_command(command: str, cwd: str, home: str) -> Analysis:
    parsed = shell.parse(command)
    findings: list[Finding] = []
    reads: list[str] = []
    writes: list[str] = []
    classes: set[str] = set()
    for simple in parsed.commands:
        command_class = _inspect(simple, cwd, home, findings, reads, writes)
        classes.add(command_class)
    text = parsed.normalized
    if FORK_BOMB.search(text):
        findings.append(
            Finding("fork_bomb", "a function that pipes into itself in the background: a fork bomb", "block")
        )
    if PIPE_TO_SHELL.search(text) and not any(f.rule == "download_piped_to_shell" for f in findings):
        findings.append(_PIPE_TO_SHELL)
    names = {c.name for c in parsed.commands}
    credential_paths = [
        p for p in [*reads, *writes, *_words(parsed.commands)] if CREDENTIAL_PATH.search(_expand(p, home))
    ]
    if credential_paths:
        if names & NETWORK_COMMANDS:
            findings.append(
                Finding(
                    "credential_exfiltration", f"credentials ({credential_paths[0]}) sent over the network", "block"
                )
            )
        else:
            findings.append(Finding("credential_access", f"reads credentials ({credential_paths[0]})", "risk"))
    if {"env", "printenv"} & {u for c in parsed.commands for u in c.upstream} and names & NETWORK_COMMANDS:
        findings.append(Finding("credential_exfiltration", "the environment piped to a network command", "block"))
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
    )


_PIPE_TO_SHELL = Finding("download_piped_to_shell", "a download piped into a shell or interpreter", "block")


def _inspect(
    command: shell.SimpleCommand, cwd: str, home: str, findings: list[Finding], reads: list[str], writes: list[str]
) -> str:
    """Record one simple command's findings and paths; return its class."""
    name, args = command.name, command.args
    options = [a for a in args if a.startswith("-")]
    operands = [a for a in args if not a.startswith("-")]
    lowered = [a.lower() for a in args]
    command_class = "unknown"

    for operator, target in command.redirects:
        if operator in WRITE_REDIRECTS or operator.startswith(">"):
            if target.startswith("&") or target.isdigit():
                continue
            if _is_device(target):
                findings.append(Finding("write_to_device", f"writes to the device {target}", "block"))
            elif target not in HARMLESS_DEVICES:
                writes.append(target)
                _history_check(target, home, findings)
        elif operator == "<":
            reads.append(target)

    if command.privileged:
        findings.append(Finding("privilege_escalation", f"runs {name} with elevated privileges", "risk"))
    if name in ("rm", "shred", "unlink", "rmdir") or (name == "find" and "-delete" in lowered):
        recursive = name == "find" or any(_is_recursive_flag(o) for o in options)
        targets = operands[:1] if name == "find" else operands
        for target in targets or ([cwd] if name == "find" else []):
            if recursive and _is_root_or_home(target, cwd, home):
                findings.append(
                    Finding("recursive_delete_root_or_home", f"recursively deletes {target} (root or home)", "block")
                )
            _history_check(target, home, findings)
        if "--no-preserve-root" in lowered:
            findings.append(Finding("recursive_delete_root_or_home", "rm --no-preserve-root", "block"))
        writes.extend(targets if name != "find" else [])
        if recursive:
            findings.append(Finding("recursive_delete", f"{name} deletes recursively", "risk"))
        command_class = "mutating"
    elif name == "chmod":
        if any(_is_world_writable_mode(a) for a in operands):
            findings.append(Finding("chmod_777", "makes files world-writable (chmod 777)", "block"))
        writes.extend(operands[1:])
        command_class = "mutating"
    elif name == "dd":
        for arg in args:
            if arg.lower().startswith("of="):
                target = arg[3:]
                if _is_device(target):
                    findings.append(Finding("dd_to_device", f"dd writes to the device {target}", "block"))
                else:
                    writes.append(target)
            elif arg.lower().startswith("if="):
                reads.append(arg[3:])
        command_class = "mutating"
    elif name in FORMATTERS or name.startswith("mkfs"):
        findings.append(Finding("filesystem_format", f"{name} formats or repartitions a disk", "block"))
        command_class = "dangerous"
    elif name in POWER or (name == "init" and operands[:1] in (["0"], ["6"])):
        findings.append(Finding("system_shutdown", f"{name} stops the machine", "block"))
        command_class = "dangerous"
    elif name == "history" and any(o in ("-c", "-w", "-d") for o in options):
        findings.append(Finding("history_or_log_wiping", "clears the shell history", "block"))
        command_class = "mutating"
    elif name in ("unset", "export", "set") and any(
        re.match(r"^(histfile|histsize|histfilesize|savehist)\b", a.lower()) or a == "history" for a in args
    ):
        findings.append(Finding("history_or_log_wiping", "disables the shell history", "block"))
        command_class = "mutating"
    elif name == "journalctl" and any(o.startswith("--vacuum") or o == "--rotate" for o in lowered):
        findings.append(Finding("history_or_log_wiping", "deletes the system journal", "block"))
        command_class = "mutating"
    elif name == "truncate":
        for target in operands:
            if not target.isdigit():
                writes.append(target)
                _history_check(target, home, findings)
        command_class = "mutating"
    elif name in ("tee", "cp", "mv", "install", "ln", "touch", "mkdir", "chown", "chgrp"):
        targets = operands if name in ("tee", "touch", "mkdir") else operands[-1:]
        sources = [] if name in ("tee", "touch", "mkdir") else operands[:-1]
        if name in ("chown", "chgrp"):
            targets, sources = operands[1:], []
        for target in targets:
            if _is_device(target):
                findings.append(Finding("write_to_device", f"{name} writes to the device {target}", "block"))
            else:
                writes.append(target)
                _history_check(target, home, findings)
        reads.extend(sources)
        command_class = "mutating"
    elif name in NETWORK_COMMANDS:
        if command.upstream and name in ("nc", "ncat", "netcat", "curl", "socat"):
            findings.append(Finding("network_upload", f"pipes local data into {name}", "risk"))
        for arg in args:
            if "@" in arg and name == "curl" and arg.split("@", 1)[1] not in ("", "-"):
                reads.append(arg.split("@", 1)[1])
        command_class = "network"
    elif name == "git":
        sub = operands[0].lower() if operands else ""
        if sub in NETWORK_GIT:
            command_class = "network"
            if sub == "push" and any(o in ("-f", "--force", "--force-with-lease") for o in options):
                findings.append(Finding("force_push", "rewrites a remote branch (git push --force)", "risk"))
        elif sub in READ_ONLY_GIT or not sub:
            command_class = "read_only"
        else:
            command_class = "mutating"
    elif name in shell.INTERPRETERS:
        if command.upstream and set(command.upstream) & DOWNLOADERS:
            findings.append(_PIPE_TO_SHELL)
        command_class = "unknown"
    elif name in READ_ONLY_COMMANDS:
        command_class = _read_only_class(name, args, lowered)
        # Every operand may name a file, except the words that are data: echo's text, a pattern, a script.
        skip = len(operands) if name in ("echo", "printf", "git", "test", "[", "seq", "date") else 0
        skip = 1 if name in PATTERN_FIRST and not skip else skip
        paths = [a for a in operands[skip:] if a not in (":", "{}", ";", "+")]
        (reads if command_class == "read_only" else writes).extend(paths)
    elif name in MUTATING_COMMANDS:
        command_class = "network" if name in ("pip", "pip3", "npm", "yarn", "pnpm", "apt", "apt-get") else "mutating"
    redirects_to_files = any(
        op in WRITE_REDIRECTS or op.startswith(">")
        for op, target in command.redirects
        if target not in HARMLESS_DEVICES
    )
    if redirects_to_files and command_class == "read_only":
        command_class = "mutating"
    if command.privileged:
        command_class = "privileged"
    return command_class


def _read_only_class(name: str, args: list[str], lowered: list[str]) -> str:
    if name == "find" and any(
        a in ("-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fls") for a in lowered
    ):
        return "mutating"
    if name == "sed" and any(a.startswith(("-i", "--in-place")) for a in args):
        return "mutating"
    if name == "sort" and any(a.startswith(("-o", "--output")) for a in args):
        return "mutating"
    if name == "awk" and any("system" in a or "print >" in a or '">' in a for a in lowered):
        return "unknown"
    return "read_only"


def _overall_class(classes: Iterable[str], findings: Sequence[Finding]) -> CommandClass:
    if any(f.severity == "block" for f in findings):
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


def _is_recursive_flag(option: str) -> bool:
    if option in ("--recursive", "-r", "-R"):
        return True
    return not option.startswith("--") and bool(set(option[1:]) & {"r", "R"})


def _is_world_writable_mode(mode: str) -> bool:
    """777 and its relatives: any mode that lets every user write (numeric or symbolic)."""
    mode = mode.lower()
    if re.fullmatch(r"0*[0-7]?[0-7]{3}", mode):
        return int(mode[-1]) & 2 == 2
    for clause in mode.split(","):
        match = re.fullmatch(r"([ugoa]*)([+=])([rwxXst]*)", clause)
        if match and ("a" in match[1] or "o" in match[1]) and "w" in match[3]:
            return True
    return False


def _is_device(target: str) -> bool:
    path = posixpath.normpath(target) if target else target
    return path.startswith("/dev/") and not any(path == d.rstrip("/") or path.startswith(d) for d in HARMLESS_DEVICES)


def _expand(path: str, home: str) -> str:
    if path == "~" or path.startswith("~/"):
        path = home + path[1:]
    return path.replace("${HOME}", home).replace("$HOME", home)


def _lexical(path: str, cwd: str, home: str) -> str:
    expanded = _expand(path, home)
    return posixpath.normpath(posixpath.join(cwd, expanded))


def _is_root_or_home(target: str, cwd: str, home: str) -> bool:
    bare = re.sub(r"(/\*|/\.|/\.\*|\*)+$", "", target) or "/"
    path = _lexical(bare, cwd, home)
    home = posixpath.normpath(home)
    return (
        path == "/" or path == home or home.startswith(path.rstrip("/") + "/") or path in ("/home", "/root", "/Users")
    )


def _history_check(target: str, home: str, findings: list[Finding]) -> None:
    if HISTORY_FILES.search(_expand(target, home)):
        findings.append(Finding("history_or_log_wiping", f"overwrites or deletes {target}", "block"))


def resolve(analysis: Analysis, cwd: str, roots: Sequence[str], home: str) -> Facts:
    """Resolve every path with the operating system and check it against the allowed roots."""
    real_roots = [os.path.realpath(root) for root in roots]
    # No lexical normalisation first: `link/..` is the parent of the link's target, not `.`.
    reads = tuple(os.path.realpath(posixpath.join(cwd, _expand(p, home))) for p in analysis.read_paths)
    writes = tuple(os.path.realpath(posixpath.join(cwd, _expand(p, home))) for p in analysis.write_paths)
    real_cwd = os.path.realpath(cwd)
    outside = tuple(p for p in (*reads, *writes) if not _within(p, real_roots))
    cwd_inside = _within(real_cwd, real_roots)
    credential = any(f.rule in ("credential_access", "credential_exfiltration") for f in analysis.findings) or any(
        CREDENTIAL_PATH.search(p) for p in (*reads, *writes, *analysis.read_paths, *analysis.write_paths)
    )
    return Facts(
        analysis=analysis,
        cwd=real_cwd,
        resolved_reads=reads,
        resolved_writes=writes,
        reads_within_roots=cwd_inside and all(_within(p, real_roots) for p in reads),
        # A command run outside the roots may write there implicitly (build output), unless it only reads.
        writes_within_roots=(cwd_inside or analysis.command_class == "read_only")
        and all(_within(p, real_roots) for p in writes),
        credential_access=credential,
        outside_roots=outside,
    )


def _within(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)
