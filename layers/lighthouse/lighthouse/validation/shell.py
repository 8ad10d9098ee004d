"""Splits a shell command line into simple commands and redirections, the way a POSIX shell would.

Written by hand because no maintained library parses shell for inspection: `shlex` tokenizes
(quotes, escapes, punctuation) and this module adds what a rule needs on top of it — the
pipeline/list structure, redirections, wrappers such as `sudo` and `env`, nested `sh -c '...'`,
`$(...)`, backticks and process substitution — after undoing the usual evasions (`${IFS}`,
Unicode look-alikes, quoting inside words, upper case).
"""

from __future__ import annotations

import functools
import re
import shlex
import unicodedata
from dataclasses import dataclass, field

from lighthouse.validation import scripts

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
_HEREDOC = re.compile(r"(?<!<)<<(?!<)(-?)[ \t]*(?:'([^'\n]+)'|\"([^\"\n]+)\"|\\?([A-Za-z_][A-Za-z0-9_]*))")
_HEREDOC_MARK = re.compile(r"^__lighthouse_heredoc_(\d+)__$")
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
    feeders: tuple[SimpleCommand, ...] = field(default=(), repr=False, compare=False)  # those commands
    stdin_text: str | None = None  # a heredoc's body or a here-string: what the command reads on stdin

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


def heredocs(text: str) -> tuple[str, list[str]]:
    """Take each heredoc's body out of the text (a shell reads it as the command's stdin, not as
    commands) and leave a numbered mark as the redirection's target; the bodies, by number."""
    bodies: list[str] = []
    lines = text.split("\n")
    kept: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        pending: list[tuple[str, bool]] = []
        kept.append(_HEREDOC.sub(functools.partial(_mark, pending=pending, numbered=len(bodies)), line))
        for delimiter, strip_tabs in pending:
            body: list[str] = []
            while index < len(lines):
                # normalize() has turned tabs into spaces already
                candidate = lines[index].lstrip(" \t") if strip_tabs else lines[index]
                index += 1
                if candidate == delimiter:
                    break
                body.append(candidate)
            bodies.append("\n".join(body))
    return "\n".join(kept), bodies


def _mark(match: re.Match[str], pending: list[tuple[str, bool]], numbered: int) -> str:
    """Record a heredoc's delimiter (and whether `<<-` strips tabs); its numbered mark."""
    delimiter = next(group for group in match.groups()[1:] if group is not None)
    pending.append((delimiter, match.group(1) == "-"))
    return f"<< __lighthouse_heredoc_{numbered + len(pending) - 1}__"


def parse(command_line: str, depth: int = 0) -> ParsedCommand:
    text, bodies = heredocs(normalize(command_line))
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
        _attach_stdin(command, bodies)
    for command in commands:
        error = error or _nested_error(command, depth)
    return ParsedCommand(commands=commands + _inline_scripts(commands, depth), normalized=collapsed, parse_error=error)


def _attach_stdin(command: SimpleCommand, bodies: list[str]) -> None:
    for operator, target in command.redirects:
        marked = _HEREDOC_MARK.match(target)
        if operator == "<<" and marked and int(marked.group(1)) < len(bodies):
            command.stdin_text = bodies[int(marked.group(1))]
        elif operator == "<<<":
            command.stdin_text = target


def _tokens(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace = " \t"  # newlines separate commands, as in a shell
    lexer.whitespace_split = True
    lexer.commenters = ""
    tokens: list[str] = []
    for token in lexer:
        for piece in _split_newlines(token):
            tokens.extend(_operators(piece))
    return tokens


# shlex joins adjacent punctuation into one token (`))`, `|(`, `;)`); a shell reads operators.
_OPERATORS = (
    "<<<",
    "&&",
    "||",
    ";;",
    "|&",
    ">>",
    "<<",
    ">&",
    "<&",
    "&>",
    ">|",
    "<>",
    ";",
    "&",
    "|",
    "(",
    ")",
    "<",
    ">",
)
_PUNCTUATION = frozenset(";&|()<>")


def _operators(token: str) -> list[str]:
    """A run of punctuation split into the operators a shell sees, longest first; other tokens as they are."""
    if len(token) < 2 or not set(token) <= _PUNCTUATION or token in _OPERATORS:
        return [token]
    found: list[str] = []
    while token:
        operator = next(o for o in _OPERATORS if token.startswith(o))
        found.append(operator)
        token = token[len(operator) :]
    return found


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
    splitter = _Splitter()
    index = 0
    while index < len(tokens):
        index = splitter.take(tokens, index)
    return splitter.finish()


class _Splitter:
    """Tokens -> simple commands: words and redirections gather until a control operator ends the
    command; a pipe carries the names of the commands upstream into the next one."""

    def __init__(self) -> None:
        self.commands: list[SimpleCommand] = []
        self.words: list[str] = []
        self.redirects: list[tuple[str, str]] = []
        self.pipeline: list[SimpleCommand] = []

    def take(self, tokens: list[str], index: int) -> int:
        """Consume the token at `index` (and a redirection's target); the index of the next one."""
        token = tokens[index]
        if _REDIRECT.match(token):
            target = tokens[index + 1] if index + 1 < len(tokens) else ""
            self.redirects.append((token.lstrip("0123456789"), target))
            return index + 2
        if token in _CONTROL:
            self._end(token)
        elif self.words or token not in _KEYWORDS:
            self.words.append(token)
        return index + 1

    def _end(self, operator: str) -> None:
        command = _simple(self.words, self.redirects) if self.words else None
        if command is not None:
            self._feed(command)
        if operator not in ("|", "|&", "(") or (operator == "(" and command is not None):
            self.pipeline = []  # a subshell opened right after a pipe reads that pipe
        elif command is not None:
            self.pipeline = [*self.pipeline, command]
        self.words, self.redirects = [], []

    def finish(self) -> list[SimpleCommand]:
        if self.words or self.redirects:
            self._feed(_simple(self.words or [":"], self.redirects))
        return self.commands

    def _feed(self, command: SimpleCommand) -> None:
        command.upstream = tuple(c.name for c in self.pipeline)
        command.feeders = tuple(self.pipeline)
        self.commands.append(command)


def _simple(words: list[str], redirects: list[tuple[str, str]]) -> SimpleCommand:
    words = list(words)
    while words and _ASSIGNMENT.match(words[0]) and len(words) > 1:
        words.pop(0)
    wrapper, privileged = _unwrap(words)
    name = _command_name(words[0] if words else wrapper)  # a bare wrapper (`env`, `time`) runs itself
    return SimpleCommand(name=name, args=words[1:], redirects=list(redirects), privileged=privileged)


def _unwrap(words: list[str]) -> tuple[str, bool]:
    """Remove the wrappers (`sudo`, `env`, `timeout`, ...) in front of the command, in place;
    return the last wrapper and whether any of them elevates privileges."""
    privileged, wrapper = False, ":"
    while words:
        name = _command_name(words[0])
        privileged = privileged or name in PRIVILEGE_WRAPPERS
        if name not in WRAPPERS and name != "pkexec":
            break
        wrapper = words.pop(0)
        _drop_wrapper_options(words)
    return wrapper, privileged


def _drop_wrapper_options(words: list[str]) -> None:
    """Skip a wrapper's own options and assignments (`env -i A=1 cmd`, `timeout 5 cmd`, `sudo -u x cmd`)."""
    while words and (words[0].startswith("-") or _ASSIGNMENT.match(words[0]) or words[0].isdigit()):
        takes_value = words[0] in ("-u", "-g", "-n", "-c", "--user", "--group")
        words.pop(0)
        if takes_value and words:
            words.pop(0)


def _command_name(word: str) -> str:
    return word.rsplit("/", 1)[-1].lower()


def _inline_script(command: SimpleCommand) -> str | None:
    """The script a shell or `eval` runs from an argument or stdin: `bash -c '...'`, `eval "..."`,
    `bash <<EOF ... EOF`."""
    if command.name == "eval":
        return " ".join(command.args)
    if command.name not in SHELLS and command.name not in ("xargs", "su"):
        return None
    script = _dash_c_script(command.args)
    if script is not None:
        return script
    if command.name in SHELLS:
        return command.stdin_text  # `bash <<EOF`: the heredoc is the script
    return _xargs_command(command.args) if command.name == "xargs" else None


def _xargs_command(args: list[str]) -> str | None:
    start = next((i for i, a in enumerate(args) if not a.startswith("-")), None)
    return shlex.join(args[start:]) if start is not None else None


def _dash_c_script(args: list[str]) -> str | None:
    for position, arg in enumerate(args):
        if arg == "-c" or (arg.startswith("-") and not arg.startswith("--") and "c" in arg[1:]):
            return " ".join(args[position + 1 :])  # the script is one word; more are its $0, $1
    return None


def _inline_scripts(commands: list[SimpleCommand], depth: int) -> list[SimpleCommand]:
    if depth >= MAX_NESTING:
        return []
    found: list[SimpleCommand] = []
    for command in commands:
        script = _inline_script(command)
        if script:
            found.extend(parse(script, depth + 1).commands)
        code = scripts.inline_code(command) if command.name in scripts.LANGUAGES else None
        for embedded in scripts.embedded_commands(code) if code else []:
            found.extend(parse(embedded, depth + 1).commands)
    return found


def _nested_error(command: SimpleCommand, depth: int) -> str | None:
    script = _inline_script(command)
    if script and depth < MAX_NESTING:
        return parse(script, depth + 1).parse_error
    return None


def quote(words: list[str]) -> str:
    return shlex.join(words)
