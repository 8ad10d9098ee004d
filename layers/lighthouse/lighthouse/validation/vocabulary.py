"""The rule layer's vocabulary: which commands read, write, reach the network or wreck a machine,
the patterns of dangerous paths, and the path tests the detectors share."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Literal

CommandClass = Literal["read_only", "mutating", "network", "privileged", "dangerous", "unknown"]
Severity = Literal["block", "deny", "risk"]  # block: always; deny: by the default policy (overridable)

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


def is_recursive_flag(option: str) -> bool:
    if option in ("--recursive", "-r", "-R"):
        return True
    return not option.startswith("--") and bool(set(option[1:]) & {"r", "R"})


def is_world_writable_mode(mode: str) -> bool:
    """777 and its relatives: any mode that lets every user write (numeric or symbolic)."""
    mode = mode.lower()
    if re.fullmatch(r"0*[0-7]?[0-7]{3}", mode):
        return int(mode[-1]) & 2 == 2
    for clause in mode.split(","):
        match = re.fullmatch(r"([ugoa]*)([+=])([rwxXst]*)", clause)
        if match and ("a" in match[1] or "o" in match[1]) and "w" in match[3]:
            return True
    return False


def is_device(target: str) -> bool:
    path = posixpath.normpath(target) if target else target
    return path.startswith("/dev/") and not any(path == d.rstrip("/") or path.startswith(d) for d in HARMLESS_DEVICES)


def expand(path: str, home: str) -> str:
    if path == "~" or path.startswith("~/"):
        path = home + path[1:]
    return path.replace("${HOME}", home).replace("$HOME", home)


def lexical(path: str, cwd: str, home: str) -> str:
    expanded = expand(path, home)
    return posixpath.normpath(posixpath.join(cwd, expanded))


def is_root_or_home(target: str, cwd: str, home: str) -> bool:
    bare = re.sub(r"(/\*|/\.|/\.\*|\*)+$", "", target) or "/"
    path = lexical(bare, cwd, home)
    home = posixpath.normpath(home)
    return (
        path == "/" or path == home or home.startswith(path.rstrip("/") + "/") or path in ("/home", "/root", "/Users")
    )


def history_check(target: str, home: str, findings: list[Finding]) -> None:
    if HISTORY_FILES.search(expand(target, home)):
        findings.append(Finding("history_or_log_wiping", f"overwrites or deletes {target}", "block"))
