"""Splits a shell command line into simple commands and redirections, the way a POSIX shell would.

Written by hand because no maintained library parses shell for inspection: `shlex` tokenizes
(quotes, escapes, punctuation) and this module adds what a rule needs on top of it — the
pipeline/list structure, redirections, wrappers such as `sudo` and `env`, nested `sh -c '...'`,
`$(...)`, backticks and process substitution — after undoing the usual evasions (`${IFS}`,
Unicode look-alikes, quoting inside words, upper case).
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from dataclasses import dataclass, field

# Wrappers that run their arguments as a command; their own options are skipped.
WRAPPERS = frozenset(
    {"sudo", "doas", "env", "nohup", "time", "nice", "ionice", "command", "builtin", "exec", "stdbuf", "timeout"}
)
PRIVILEGE_WRAPPERS = frozenset({"sudo", "doas", "su", "pkexec"})
SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "ash", "fish", "busybox"})
INTERPRETERS = SHELLS | frozenset({"python", "python3", "perl", "ruby", "node", "php"})
_CONTROL = frozenset({";", "&&", "||", "&", "\n", "|", "|&", "(", ")", ";;"})
_REDIRECT = re.compile(r"^(\d*|&)(>>|>\||>&|>|<<<|<<|<>|<&|<)$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_IFS = re.compile(r"\$\{IFS[^}]*\}|\$IFS\b")
_SUBSTITUTION = re.compile(r"\$\(([^()]*(?:\([^()]*\)[^()]*)*)\)|`([^`]*)`|[<>]\(([^()]*)\)")
_KEYWORDS = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for", "in", "{", "}", "!"})
MAX_NESTING = 4


@dataclass
class SimpleCommand:
    """One command of a pipeline or list: its name (lower case, no directory) and arguments."""

    name: str
    args: list[str]
    redirects: list[tuple[str, str]] = field(default_factory=list)  # (operator, target)
    privileged: bool = False
    upstream: tuple[str, ...] = ()  # the commands earlier in the same pipeline, whose output flows here

    @property
    def argv(self) -> list[str]:
        return [self.name, *self.args]


@dataclass
class ParsedCommand:
    commands: list[SimpleCommand]
    normalized: str  # collapsed, case-folded text for whole-line patterns
    parse_error: str | None = None


def normalize(text: str) -> str:
    """Undo evasions that do not change what a shell runs: look-alike characters and `${IFS}`."""
    text = unicodedata.normalize("NFKC", text)
    text = _IFS.sub(" ", text)
    return text.replace("\r", "\n").replace("\t", " ")


def parse(command_line: str, depth: int = 0) -> ParsedCommand:
    text = normalize(command_line)
    collapsed = " ".join(text.lower().split())
    nested: list[SimpleCommand] = []
    error: str | None = None
    if depth < MAX_NESTING:
        for match in _SUBSTITUTION.finditer(text):
            inner = next(group for group in match.groups() if group is not None)
            inner_parsed = parse(inner, depth + 1)
            nested.extend(inner_parsed.commands)
            error = error or inner_parsed.parse_error
    try:
        tokens = _tokens(text)
    except ValueError as problem:
        # An unbalanced quote: a shell would refuse it too; inspect the words we can still see.
        return ParsedCommand(commands=nested + _fallback_words(text), normalized=collapsed, parse_error=str(problem))
    commands = nested + _split(tokens, depth)
    for command in commands:
        error = error or _nested_error(command, depth)
    return ParsedCommand(commands=commands + _inline_scripts(commands, depth), normalized=collapsed, parse_error=error)


def _tokens(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace = " \t"  # newlines separate commands, as in a shell
    lexer.whitespace_split = True
    lexer.commenters = ""
    tokens: list[str] = []
    for token in lexer:
        tokens.extend(_split_newlines(token))
    return tokens


def _split_newlines(token: str) -> list[str]:
    if "\n" not in token:
        return [token]
    parts: list[str] = []
    for index, piece in enumerate(token.split("\n")):
        if index:
            parts.append("\n")
        if piece:
            parts.append(piece)
    return parts


def _fallback_words(text: str) -> list[SimpleCommand]:
    words = re.split(r"[\s;&|()<>'\"`]+", text)
    commands = []
    current: list[str] = []
    for word in [*words, ""]:
        if word:
            current.append(word)
        elif current:
            commands.append(_simple(current, []))
            current = []
    return commands


def _split(tokens: list[str], depth: int) -> list[SimpleCommand]:
    commands: list[SimpleCommand] = []
    words: list[str] = []
    redirects: list[tuple[str, str]] = []
    pipeline: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if _REDIRECT.match(token):
            target = tokens[index + 1] if index + 1 < len(tokens) else ""
            redirects.append((token.lstrip("0123456789"), target))
            index += 2
            continue
        if token in _CONTROL:
            command = _simple(words, redirects) if words else None
            if command is not None:
                command.upstream = tuple(pipeline)
                commands.append(command)
            in_pipeline = token in ("|", "|&")
            pipeline = ([*pipeline, command.name] if command else pipeline) if in_pipeline else []
            words, redirects = [], []
            index += 1
            continue
        if not words and token in _KEYWORDS:
            index += 1
            continue
        words.append(token)
        index += 1
    if words or redirects:
        command = _simple(words or [":"], redirects)
        command.upstream = tuple(pipeline)
        commands.append(command)
    return commands


def _simple(words: list[str], redirects: list[tuple[str, str]]) -> SimpleCommand:
    words = list(words)
    privileged = False
    wrapper = ":"
    while words and _ASSIGNMENT.match(words[0]) and len(words) > 1:
        words.pop(0)
    while words:
        name = _command_name(words[0])
        if name in PRIVILEGE_WRAPPERS:
            privileged = True
        if name not in WRAPPERS and name != "pkexec":
            break
        wrapper = words.pop(0)
        # Skip the wrapper's own options and assignments (`env -i A=1 cmd`, `timeout 5 cmd`, `sudo -u x cmd`).
        while words and (words[0].startswith("-") or _ASSIGNMENT.match(words[0]) or words[0].isdigit()):
            takes_value = words[0] in ("-u", "-g", "-n", "-c", "--user", "--group")
            words.pop(0)
            if takes_value and words:
                words.pop(0)
    if not words:  # a bare wrapper (`env`, `time`) runs itself
        return SimpleCommand(name=_command_name(wrapper), args=[], redirects=list(redirects), privileged=privileged)
    return SimpleCommand(name=_command_name(words[0]), args=words[1:], redirects=list(redirects), privileged=privileged)


def _command_name(word: str) -> str:
    return word.rsplit("/", 1)[-1].lower()


def _inline_script(command: SimpleCommand) -> str | None:
    """The script a shell or `eval` runs from an argument: `bash -c '...'`, `eval "..."`."""
    if command.name == "eval":
        return " ".join(command.args)
    if command.name in SHELLS or command.name in ("xargs", "su"):
        for position, arg in enumerate(command.args):
            if arg == "-c" or (arg.startswith("-") and not arg.startswith("--") and "c" in arg[1:]):
                return " ".join(command.args[position + 1 :])  # the script is one word; more are its $0, $1
        if command.name == "xargs":
            start = next((i for i, a in enumerate(command.args) if not a.startswith("-")), None)
            return shlex.join(command.args[start:]) if start is not None else None
    return None


def _inline_scripts(commands: list[SimpleCommand], depth: int) -> list[SimpleCommand]:
    if depth >= MAX_NESTING:
        return []
    found: list[SimpleCommand] = []
    for command in commands:
        script = _inline_script(command)
        if script:
            found.extend(parse(script, depth + 1).commands)
    return found


def _nested_error(command: SimpleCommand, depth: int) -> str | None:
    script = _inline_script(command)
    if script and depth < MAX_NESTING:
        return parse(script, depth + 1).parse_error
    return None


def quote(words: list[str]) -> str:
    return shlex.join(words)
