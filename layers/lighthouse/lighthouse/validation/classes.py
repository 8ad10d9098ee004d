"""Which named class (catalog.py) one simple shell command falls in: a deny class, with the words
that matched, or an everyday class, or neither (then the policy and, failing it, a review decide).

`classify` sees one command after shell.py has unwrapped its disguises (quotes, `${IFS}`, wrappers,
`bash -c`, substitutions, heredocs fed to a shell); inline code for other interpreters goes to
scripts.py. Paths are judged lexically here against `Where` (the roots, the temp dirs, the
request's HOME and TMPDIR); rules.resolve checks them again with the operating system.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lighthouse.validation import shell
from lighthouse.validation.gitrules import git
from lighthouse.validation.tools import TOOL_HANDLERS, payload
from lighthouse.validation.vocabulary import READ_ONLY_COMMANDS
from lighthouse.validation.where import Verdict, Where, deny

_HELP = frozenset({"--help", "--version", "help", "--usage"})
_DRY_RUN = re.compile(r"^(--dry-?run(=(client|server|true))?|--dryrun|--what-if)$")
_DRY_RUN_N = frozenset({"make", "rsync"})  # where `-n` means "show, do not do"


def classify(command: shell.SimpleCommand, where: Where) -> Verdict:
    """The command's deny classes, or its everyday class (None: neither)."""
    verdict = Verdict()
    if _asks_for_help(command):
        verdict.everyday = "everyday_help"
        return verdict
    handler = _HANDLERS.get(command.name)
    if handler is not None:
        handler(command, where, verdict)
    elif command.name in READ_ONLY_COMMANDS:
        verdict.everyday = "everyday_read"
    elif command.name in _BUILD_TOOLS or _is_project_script(command.name):
        verdict.everyday = "everyday_build"
    elif command.name in shell.SHELLS:
        _shell(command, where, verdict)
    payload(command, verdict)
    if verdict.denies:
        verdict.everyday = None
    return verdict


_NO_DRY_RUN = frozenset({"rm", "sed", "sort", "head", "tail", "grep", "xargs", "find", "sh", "bash"})


def _asks_for_help(command: shell.SimpleCommand) -> bool:
    """`--help`/`--version` among the first words (or a lone `-h`), or a `--dry-run`-style flag on a
    tool that honours one."""
    if command.stdin_text is not None and command.name in shell.INTERPRETERS:
        return False
    args = [a.lower() for a in command.args]
    if any(a in _HELP for a in args[:3]) or args == ["-h"]:
        return True
    return command.name not in _NO_DRY_RUN and _dry_run(command.name, args)


def _dry_run(name: str, args: list[str]) -> bool:
    return any(_DRY_RUN.match(a) for a in args) or (name in _DRY_RUN_N and "-n" in args)


# ---- deletion and files -----------------------------------------------------------------------------


def _rm(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    operands = [a for a in command.args if not a.startswith("-") or a == "-"]
    if command.name == "shred":
        if not all(where.inside(o) for o in operands):
            deny(verdict, "shred", command)
        return
    if all(where.inside(o) for o in operands):  # none: a no-op by itself (xargs decides what it deletes)
        verdict.everyday = "everyday_file_change"


_FIND_EXEC = frozenset({"-exec", "-execdir", "-ok", "-okdir"})


def _find(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    lowered = [a.lower() for a in command.args]
    runs = {lowered[i + 1].rsplit("/", 1)[-1] for i, a in enumerate(lowered[:-1]) if a in _FIND_EXEC}
    deletes = "-delete" in lowered or bool(runs & {"rm", "shred", "unlink"})
    if deletes and not _searches_inside(command.args, where):
        deny(verdict, "find_delete_outside", command)
    elif deletes:
        verdict.everyday = "everyday_file_change"
    elif not runs:
        verdict.everyday = "everyday_read"


def _searches_inside(args: list[str], where: Where) -> bool:
    """find's starting points (the words before the first test) are all inside the roots."""
    first_test = next((i for i, a in enumerate(args) if a.startswith(("-", "(", "!"))), len(args))
    return all(where.inside(start) for start in args[:first_test] or ["."])


_XARGS_VALUE_OPTIONS = frozenset({"-n", "-L", "-P", "-I", "-i", "-d", "-E", "-e", "-s", "-a"})


def _xargs(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    """Deleting what a find produced is as free as the find's starting points are inside the roots;
    deleting paths from any other feeder is left to the policy. Other commands are judged as nested
    commands (shell.py parses them out)."""
    if _xargs_program(command.args).rsplit("/", 1)[-1] not in ("rm", "shred", "unlink"):
        verdict.everyday = "everyday_script"
        return
    finds = [feeder for feeder in command.feeders if feeder.name == "find"]
    if finds and all(_searches_inside(find.args, where) for find in finds):
        verdict.everyday = "everyday_file_change"
    elif finds:
        deny(verdict, "xargs_rm_outside", command)


def _xargs_program(args: list[str]) -> str:
    index = 0
    while index < len(args) and args[index].startswith("-"):
        index += 2 if args[index] in _XARGS_VALUE_OPTIONS else 1
    return args[index] if index < len(args) else ""


def _truncate(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    targets = [a for a in command.args if not a.startswith("-") and not re.fullmatch(r"[+\-<>/%]?\d+[KMGTkmgt]?", a)]
    if targets and all(where.inside(t) for t in targets):
        verdict.everyday = "everyday_file_change"
    elif targets:
        deny(verdict, "truncate_outside", command)


def _rsync(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    local = _local_operands(command.args, where)
    if local and _rsync_deletes(command.args) and not local[-1]:
        deny(verdict, "rsync_delete_outside", command)
    elif local and all(local):
        verdict.everyday = "everyday_file_change"


def _local_operands(args: list[str], where: Where) -> list[bool]:
    """For each source and target: a local path inside the roots (not `host:path`)."""
    return [":" not in o and where.inside(o) for o in args if not o.startswith("-")]


def _rsync_deletes(args: list[str]) -> bool:
    return any(a.lower().startswith("--delete") or a.lower() in ("--del", "--remove-source-files") for a in args)


def _history(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    if not command.args:  # `history -c` and friends are the detectors' history wiping
        verdict.everyday = "everyday_read"


def _file_change(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    verdict.everyday = "everyday_file_change"


def _chmod(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    operands = [a for a in command.args if not a.startswith("-")]
    if all(where.inside(o) for o in operands[1:]):
        verdict.everyday = "everyday_file_change"


_HANDLERS: dict[str, Callable[[shell.SimpleCommand, Where, Verdict], None]] = {
    "git": git,
    "history": _history,
    "rm": _rm,
    "rmdir": _rm,
    "unlink": _rm,
    "shred": _rm,
    "find": _find,
    "xargs": _xargs,
    "truncate": _truncate,
    "rsync": _rsync,
    "chmod": _chmod,
    **{name: _file_change for name in ("mkdir", "touch", "cp", "mv", "ln", "tee", "patch", "tar", "unzip", "zip",
                                        "gzip", "gunzip", "install")},
}  # fmt: skip
_HANDLERS.update(TOOL_HANDLERS)

# Build, test, lint, format: local development tools, run in the project.
_BUILD_TOOLS = frozenset(
    {"make", "cmake", "ninja", "gcc", "g++", "cc", "clang", "rustc", "javac", "pytest", "py.test", "tox", "nox",
     "mypy", "ruff", "black", "isort", "flake8", "pylint", "pyright", "eslint", "prettier", "tsc", "jest", "vitest",
     "mocha", "mvn", "gradle", "rake", "rspec", "swift", "shellcheck", "hadolint", "pre-commit", "coverage",
     "sphinx-build", "mkdocs", "hugo", "base64", "xxd", "gofmt", "rustfmt", "clang-format", "ctest"}
)  # fmt: skip


def _shell(command: shell.SimpleCommand, where: Where, verdict: Verdict) -> None:
    """A shell running an inline script is as everyday as the script's own commands (classified on
    their own, shell.py parses them out); one running a script file of the project is the project's."""
    operands = [a for a in command.args if not a.startswith("-")]
    inline = any(a.startswith("-") and "c" in a[1:] and not a.startswith("--") for a in command.args)
    if inline or command.stdin_text is not None or (operands and where.inside(operands[0])):
        verdict.everyday = "everyday_script"


def _is_project_script(name: str) -> bool:
    return name in ("./gradlew", "./mvnw", "gradlew", "mvnw")
